import type pg from 'pg';
import type { RouteScope } from '../context/index.js';
import { transactionStatus } from '../pool/index.js';
import type { Classification, QueryRequest, ReadCacheHook } from '../routing/index.js';
import type { ClusterNode } from '../topology/index.js';
import { typesCacheId } from './key.js';
import type { ReadPosition, RequiredPosition, ResultCache } from './result-cache.js';
import { ALL_TABLES, readDependencies, writtenTables } from './tables.js';

/** Read reasons whose result depends only on the data (SHOW and EXPLAIN depend on settings). */
const CACHEABLE_REASONS: ReadonlySet<Classification['reason']> = new Set([
  'select',
  'values',
  'table',
  'hint-replica',
  'hint-primary',
]);

/**
 * Built-in functions that are volatile without writing (so routing sends them to replicas) and
 * ones that are not volatile but whose answer depends on the session, the transaction or the
 * clock: a cached answer would be another call's, session's or an old one. Matched on the text
 * (over-matching only costs a bypass); user functions the catalog marks volatile are refused by
 * the statement policy.
 */
const SESSION_DEPENDENT =
  /\b(?:random|random_normal|setseed|gen_random_uuid|uuidv[47]|uuid_generate_\w+|pg_sleep\w*|now|current_(?:timestamp|time|date|user|role|schema|schemas|setting|catalog|database|query)|session_user|localtime|localtimestamp|statement_timestamp|transaction_timestamp|clock_timestamp|timeofday|pg_backend_pid|inet_(?:client|server)_(?:addr|port)|txid_current\w*|pg_current_\w+|pg_my_temp_schema|pg_is_in_recovery|pg_last_\w+|has_\w+_privilege|pg_has_role|version)\b/i;

export interface CacheLayerDeps {
  /** Database and role the pooled connections use, to prefix every key. */
  readonly keyPrefix: string;
  /** The statement policy's verdict (catalog-volatile functions, force-primary patterns). */
  forcesPrimary(cls: Classification, text: string): string | undefined;
  /** May this relation be a view (the catalog says so, or is not known yet)? */
  mayBeView(relation: string): boolean;
  /** The context's read-your-writes floor. */
  required(scope: RouteScope | undefined): RequiredPosition;
  /** What the node is known to have applied before a read starts on it (a lower bound). */
  positionOf(node: ClusterNode): bigint | undefined;
  /** A write through this instance changed these tables (after commit): tell the others. */
  published?(tables: readonly string[]): void;
  /** A hit, for telemetry (no statement ran, so no statement span exists). */
  hit?(text: string): void;
}

/** The executor's cache hook: serves and stores reads, and invalidates on writes. */
export class CacheLayer implements ReadCacheHook {
  /** Tables a connection's open transaction wrote; dropped again when it ends. */
  private readonly pending = new WeakMap<object, Set<string>>();

  constructor(
    readonly cache: ResultCache,
    private readonly deps: CacheLayerDeps,
  ) {}

  read(
    request: QueryRequest,
    cls: Classification,
    scope: RouteScope | undefined,
    run: (request: QueryRequest, placed: (node: ClusterNode) => void) => Promise<pg.QueryResult>,
  ): Promise<pg.QueryResult> | undefined {
    // Writes and volatile reads pass through here too, so a cached() scope sees them bypassed.
    const asked = this.cache.requested(request.text);
    if (!asked) return undefined;
    if (!this.cacheable(request, cls, scope)) {
      this.cache.bypassed();
      return run({ ...request, cache: 'bypass' }, noop);
    }
    const config = request.config;
    return this.cache
      .read(
        this.deps.keyPrefix,
        { text: request.text, values: config.values, rowMode: shapeOf(config) },
        readDependencies(cls.relations, cls.functions, (r) => this.deps.mayBeView(r)),
        asked,
        this.deps.required(scope),
        async () => {
          let lsn: bigint | undefined;
          let primaryAt: number | undefined;
          const result = await run({ ...request, cache: 'miss' }, (node) => {
            lsn = this.deps.positionOf(node);
            primaryAt = node.role === 'primary' ? performance.now() : undefined;
          });
          const position: ReadPosition = { lsn, primaryAt };
          return { result, position };
        },
      )
      .then(({ result, outcome }) => {
        if (outcome === 'hit') this.deps.hit?.(request.text);
        return result;
      });
  }

  /** A statement inside a transaction or a session pin asked for the cache: never served. */
  pinned(request: QueryRequest): 'bypass' | undefined {
    if (!this.cache.requested(request.text)) return undefined;
    this.cache.bypassed();
    return 'bypass';
  }

  executed(cls: Classification, request: QueryRequest, client: pg.Client): void {
    const status = transactionStatus(client);
    if (cls.kind === 'write' && cls.transaction === undefined) {
      let tables = writtenTables(
        request.text,
        cls.reason === 'volatile-function' || cls.reason === 'call',
      );
      // A write through a view changes tables it does not name.
      if (tables.some((t) => t !== ALL_TABLES && this.deps.mayBeView(t))) tables = [ALL_TABLES];
      if (tables.length > 0) {
        // At once (this instance's later reads must not see the old entry), and again when
        // the transaction ends: reads in between saw the old rows and may have stored them.
        this.cache.invalidate(tables);
        if (status === 'I') this.deps.published?.(tables);
        else {
          let set = this.pending.get(client);
          if (!set) {
            set = new Set();
            this.pending.set(client, set);
          }
          for (const t of tables) set.add(t);
        }
      }
    }
    if (status === 'I') {
      const set = this.pending.get(client);
      if (set) {
        this.pending.delete(client);
        const tables = set.has(ALL_TABLES) ? [ALL_TABLES] : [...set];
        this.cache.invalidate(tables);
        this.deps.published?.(tables);
      }
    }
  }

  private cacheable(
    request: QueryRequest,
    cls: Classification,
    scope: RouteScope | undefined,
  ): boolean {
    if (cls.kind !== 'read' || cls.session !== undefined || cls.transaction !== undefined)
      return false;
    if (!CACHEABLE_REASONS.has(cls.reason)) return false;
    if (scope?.target === 'primary' || scope?.consistency === 'strong') return false;
    if (request.config.types !== undefined && typesCacheId(request.config.types) === undefined)
      return false;
    if (this.deps.forcesPrimary(cls, request.text) !== undefined) return false;
    return !SESSION_DEPENDENT.test(request.text);
  }
}

function noop(): void {}

/**
 * What shapes the rows besides the text: the row mode, the declared parser set, and a
 * per-statement `binary` (its values are parsed from the binary format). A `pool.binary`
 * cluster reads every statement in binary, so its entries agree among themselves.
 */
function shapeOf(config: QueryRequest['config']): string | undefined {
  const types = config.types === undefined ? undefined : typesCacheId(config.types);
  const shape = types === undefined ? config.rowMode : `${config.rowMode ?? ''}\u0001${types}`;
  return (config as { binary?: unknown }).binary === true ? `${shape ?? ''}\u0002binary` : shape;
}
