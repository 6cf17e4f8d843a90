import type pg from 'pg';
import type { NodeProber } from '../health/index.js';
import type { ClusterNode } from '../topology/index.js';
import { untraced } from '../tracing/index.js';
import type { Classification } from './classification.js';
import type { QueryRequest } from './query-args.js';
import type { StatementEvent, StatementListener, StatementOutcome } from './statement-observer.js';
import {
  CATALOG_VIEWS_SQL,
  CATALOG_VOLATILE_SQL,
  type StatementPolicy,
} from './statement-policy.js';

/**
 * Keeps the statement policy's view of the catalog current while applications run migrations:
 * read in full at start-up, again at once after DDL that went through pgpulse, a moment after a
 * replica refused a read as a write (debounced: a burst of refusals costs one read), and
 * whenever a cheap periodic signature of pg_proc and pg_rewrite changes.
 */

/** Runs one catalog query on the primary; rejects when it cannot. */
export type CatalogQuery = <R extends pg.QueryResultRow>(sql: string) => Promise<R[]>;

/** How the catalog is read and kept current (from the `routing` section). */
export interface FunctionCatalogOptions {
  /** `routing.detectCatalogVolatile`: false leaves the catalog unread (reads trust the lists). */
  readonly detect?: boolean;
  /** Signature check interval in ms; 0 disables the periodic check. */
  readonly refreshMs: number;
  /** Wait after a refusal before reading, so a burst of refusals costs one read. */
  readonly debounceMs?: number;
  /** Wait before retrying a read that failed (primary down, for instance). */
  readonly retryMs?: number;
}

/**
 * Changes whenever a function or a view rule is created, replaced or dropped: the count and
 * the sum of the row versions' transaction ids of pg_proc and pg_rewrite. One round trip over
 * a few thousand catalog rows.
 */
export const CATALOG_SIGNATURE_SQL = `
  SELECT (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_catalog.pg_proc)
    || '/' ||
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM pg_catalog.pg_rewrite)
    AS signature`;

/**
 * What each user view's rules depend on: functions (kind 'f') and other views (kind 'v'),
 * schema-qualified, from pg_depend. Views on views are resolved by the caller.
 */
export const VIEW_DEPENDENCIES_SQL = `
  SELECT vn.nspname AS view_schema, v.relname AS view_name,
         CASE WHEN p.oid IS NOT NULL THEN 'f' ELSE 'v' END AS kind,
         coalesce(pn.nspname, rn.nspname) AS dep_schema,
         coalesce(p.proname, rc.relname) AS dep_name
  FROM pg_catalog.pg_rewrite r
  JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind = 'v'
  JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
  JOIN pg_catalog.pg_depend d
    ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
  LEFT JOIN pg_catalog.pg_proc p
    ON d.refclassid = 'pg_catalog.pg_proc'::regclass AND p.oid = d.refobjid
  LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
  LEFT JOIN pg_catalog.pg_class rc
    ON d.refclassid = 'pg_catalog.pg_class'::regclass AND rc.oid = d.refobjid
   AND rc.relkind = 'v' AND rc.oid <> v.oid
  LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
  WHERE vn.nspname NOT IN ('pg_catalog', 'information_schema')
    AND (p.oid IS NOT NULL OR rc.oid IS NOT NULL)`;

interface ViewDependency {
  readonly view_schema: string;
  readonly view_name: string;
  readonly kind: 'f' | 'v';
  readonly dep_schema: string;
  readonly dep_name: string;
}

/** Objects whose DDL can change what a read calls. */
const CATALOG_DDL_TEXT = /\b(?:function|procedure|view|rule|extension|schema|aggregate)\b/i;

/** True when a statement that succeeded may have changed functions or views. */
export function changesCatalog(cls: Classification, text: string): boolean {
  if (cls.reason === 'ddl') return true;
  const batch =
    cls.reason === 'multi-statement' || cls.reason === 'too-large' || cls.reason === 'utility';
  return batch && CATALOG_DDL_TEXT.test(text.length > 65_536 ? text.slice(0, 65_536) : text);
}

/**
 * One catalog query on the current primary's probe connection: pgpulse's own reads never take
 * a connection of the application's pool (see NodeProber.query), and are never traced.
 */
export function primaryCatalogQuery(
  primary: () => ClusterNode | undefined,
  proberOf: (node: ClusterNode) => NodeProber | undefined,
): CatalogQuery {
  return <R extends pg.QueryResultRow>(sql: string) =>
    untraced(async () => {
      const node = primary();
      const prober = node && proberOf(node);
      if (!prober) throw new Error('no primary to read the catalog from');
      return prober.query<R>(sql);
    });
}

/**
 * The statement policy's catalog (volatile functions, views and what they call), read from the
 * primary and kept current; it listens to statements: DDL that went through pgpulse reads it
 * again, and a replica's refusal teaches the policy and reads it again soon.
 */
export class FunctionCatalog implements StatementListener {
  #signature: string | undefined;
  #loading: Promise<void> | undefined;
  #again = false;
  #soon: NodeJS.Timeout | undefined;
  #periodic: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;
  #first: Promise<void> | undefined;
  /** Catalog reads done, for tests and stats. */
  loads = 0;

  constructor(
    private readonly policy: StatementPolicy,
    private readonly query: CatalogQuery,
    private readonly options: FunctionCatalogOptions,
  ) {}

  /**
   * The first read at start-up, then the periodic check (nothing when `detect` is false);
   * until it settles, a read that names a function or a relation is not trusted on a replica
   * (`StatementPolicy.firstReadPending`). Started once; later calls get the same promise.
   */
  firstLoad(): Promise<void> {
    this.#first ??= (async () => {
      if (this.options.detect === false) return;
      await this.load();
      this.start();
    })().finally(() => {
      this.policy.firstReadPending = false;
    });
    return this.#first;
  }

  /** A statement that succeeded and may have changed functions or views reads the catalog again. */
  finished(event: StatementEvent, outcome: StatementOutcome): void {
    if (outcome.error === undefined && changesCatalog(event.cls, event.request.text))
      this.changed();
  }

  /** A replica refused a read as a write: the policy sends that text to the primary from now on. */
  refused(_node: ClusterNode, request: QueryRequest): void {
    this.policy.learnRefused(request.text);
    this.refreshSoon();
  }

  /** Reads the catalog now (shared with a read already under way, then once more). */
  load(): Promise<void> {
    if (this.#loading) {
      this.#again = true;
      return this.#loading;
    }
    this.#loading = this.#read().finally(() => {
      this.#loading = undefined;
      if (this.#again && !this.#stopped) {
        this.#again = false;
        void this.load();
      }
    });
    return this.#loading;
  }

  /** DDL went through pgpulse: distrust the catalog until it is read again, at once. */
  changed(): void {
    this.policy.invalidateCatalog();
    void this.load();
    // A DDL inside a transaction is visible only after COMMIT: look again shortly.
    this.refreshSoon();
  }

  /** A replica refused a read as a write: read the catalog again after the debounce. */
  refreshSoon(): void {
    if (this.#soon || this.#stopped) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      void this.load();
    }, this.options.debounceMs ?? 1000);
    this.#soon.unref();
  }

  /** Starts the periodic signature check. */
  start(): void {
    if (this.options.refreshMs <= 0 || this.#periodic || this.#stopped) return;
    this.#periodic = setInterval(() => void this.#check(), this.options.refreshMs);
    this.#periodic.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#soon);
    clearTimeout(this.#retry);
    clearInterval(this.#periodic);
  }

  async #check(): Promise<void> {
    if (this.#loading) return;
    try {
      const [row] = await this.query<{ signature: string }>(CATALOG_SIGNATURE_SQL);
      if (row !== undefined && row.signature !== this.#signature) await this.load();
    } catch {
      // The next round tries again; routing keeps the catalog it has.
    }
  }

  async #read(): Promise<void> {
    try {
      const [signature] = await this.query<{ signature: string }>(CATALOG_SIGNATURE_SQL);
      const volatile = await this.query<{ schema: string; name: string }>(CATALOG_VOLATILE_SQL);
      const dependencies = await this.query<ViewDependency>(VIEW_DEPENDENCIES_SQL);
      const views = await this.query<{ schema: string; name: string }>(CATALOG_VIEWS_SQL);
      this.loads++;
      const changed = this.#signature !== undefined && signature?.signature !== this.#signature;
      this.#signature = signature?.signature;
      this.policy.setCatalogVolatile(volatile.map((r) => `${r.schema}.${r.name}`));
      this.policy.setViews(views.map((r) => `${r.schema}.${r.name}`));
      this.policy.setViewFunctions(resolveViews(dependencies));
      // Refusals taught what the catalog did not know; once it changed, it decides again.
      if (changed) this.policy.forgetLearned();
    } catch {
      // Until the catalog is known, reads that call functions go to the primary; try again.
      if (this.#stopped) return;
      clearTimeout(this.#retry);
      this.#retry = setTimeout(() => void this.load(), this.options.retryMs ?? 5000);
      this.#retry.unref();
    }
  }
}

/** Each view -> every function it calls, through views on views (cycles are cut). */
export function resolveViews(
  dependencies: readonly ViewDependency[],
): Map<string, readonly string[]> {
  const direct = new Map<string, { functions: string[]; views: string[] }>();
  for (const d of dependencies) {
    const view = `${d.view_schema}.${d.view_name}`;
    let entry = direct.get(view);
    if (!entry) {
      entry = { functions: [], views: [] };
      direct.set(view, entry);
    }
    (d.kind === 'f' ? entry.functions : entry.views).push(`${d.dep_schema}.${d.dep_name}`);
  }
  const resolved = new Map<string, readonly string[]>();
  const visit = (view: string, seen: Set<string>): readonly string[] => {
    const done = resolved.get(view);
    if (done) return done;
    const entry = direct.get(view);
    if (!entry || seen.has(view)) return [];
    seen.add(view);
    const all = new Set(entry.functions);
    for (const inner of entry.views) for (const fn of visit(inner, seen)) all.add(fn);
    const list = [...all];
    resolved.set(view, list);
    return list;
  };
  for (const view of direct.keys()) visit(view, new Set());
  return resolved;
}
