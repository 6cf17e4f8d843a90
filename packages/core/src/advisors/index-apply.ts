import { ConfigError, type ConfigIssue, type PgPulseError } from '../errors/index.js';
import {
  type SessionSettings,
  underAdvisoryLock,
  withSessionSettings,
} from '../maintenance/index.js';
import {
  createIndexSql,
  type IndexShape,
  indexLockKey,
  indexNames,
  type PartialPredicate,
  predicateSql,
  type QueryClient,
  type SortDirection,
} from '../sql/index.js';
import { resolveTable } from './catalog.js';
import { coveringIndex } from './coverage.js';
import { buildConcurrently, buildPartitioned, type Table, tableIndexes } from './index-build.js';
import { lookupNames, pickName } from './index-names.js';
import { isName, timeouts } from './maintenance-frame.js';
import type { IndexRecommendation } from './recommendations.js';
import { type Session, withSession } from './session.js';
import { asRow, ddlFailure } from './sql.js';

/**
 * Applies index recommendations the way a fleet of application instances can run it safely:
 * one concurrent build per table at a time across every instance (a PostgreSQL advisory
 * lock), DDL rebuilt from catalog-checked names rather than taken from the recommendation's
 * text (invariant 7), and an index left invalid by a failed build dropped again.
 */

export interface ApplyOptions {
  /** Build recommendations with at least this priority. Default 4. */
  readonly priorityThreshold?: number;
  /** Check everything and return the statements, without building. Default false. */
  readonly dryRun?: boolean;
  /** lock_timeout while building, ms (0 = wait forever). Default: the session's. */
  readonly lockTimeoutMs?: number;
  /** statement_timeout for each build, ms. Default: the session's. */
  readonly statementTimeoutMs?: number;
}

/**
 * - 'created': built and verified valid;
 * - 'exists': a valid index already serves it (a second apply is a no-op);
 * - 'locked': another session holds this table's advisory lock (another instance is
 *   building); nothing was done, try again later;
 * - 'dry-run': checked, not built; `sql` is what would run;
 * - 'below-threshold': priority under `priorityThreshold`;
 * - 'skipped': the recommendation does not match the catalog (table or column gone, names
 *   taken) or is malformed;
 * - 'failed': the build failed; any invalid index it left was dropped.
 */
export type ApplyStatus =
  | 'created'
  | 'exists'
  | 'locked'
  | 'dry-run'
  | 'below-threshold'
  | 'skipped'
  | 'failed';

/**
 * What `applyRecommendations` did with one recommendation: built, already served, skipped or
 * failed, with the statement and the reason.
 */
export interface ApplyResult {
  readonly recommendation: IndexRecommendation;
  readonly status: ApplyStatus;
  /** The index built, or the one that already serves the recommendation. */
  readonly indexName?: string;
  /** The statement run (or that would run), rebuilt from the catalog. */
  readonly sql?: string;
  readonly reason?: string;
  readonly error?: PgPulseError;
}

/** The recommendation's structure, or why it cannot be built. Its `sql` text is never used. */
function shapeOf(rec: IndexRecommendation): IndexShape | string {
  if (typeof rec !== 'object' || rec === null) return 'not a recommendation';
  if (!isName(rec.schema) || !isName(rec.table)) return 'schema and table must be names';
  if (!Array.isArray(rec.columns) || rec.columns.length === 0 || !rec.columns.every(isName)) {
    return 'columns must be a non-empty list of column names';
  }
  if (new Set(rec.columns).size !== rec.columns.length) return 'a column is listed twice';
  let order: readonly SortDirection[] | undefined;
  if (rec.order !== undefined) {
    if (
      !Array.isArray(rec.order) ||
      rec.order.length !== rec.columns.length ||
      !rec.order.every((d) => d === 'asc' || d === 'desc')
    ) {
      return "order must give 'asc' or 'desc' for each column";
    }
    order = rec.order;
  }
  let predicate: PartialPredicate | undefined;
  if (rec.predicate !== undefined) {
    const p = rec.predicate as Partial<PartialPredicate> | null;
    if (typeof p !== 'object' || p === null || !isName(p.column) || typeof p.value !== 'string') {
      return 'predicate must be { column, value }';
    }
    if (p.value.includes('\0')) return 'the predicate value cannot contain a NUL character';
    predicate = { column: p.column, value: p.value };
  }
  let include: string[] | undefined;
  if (rec.include !== undefined) {
    if (!Array.isArray(rec.include) || !rec.include.every(isName)) {
      return 'include must be a list of column names';
    }
    include = [...rec.include];
  }
  if (rec.where !== undefined) {
    // `where` is display text; the DDL is built from `predicate` and they must agree.
    if (predicate === undefined || rec.where !== predicateSql(predicate)) {
      return 'where must be the partial predicate pgpulse generated (see predicate); free SQL is never run';
    }
  }
  return {
    schema: rec.schema,
    table: rec.table,
    columns: [...rec.columns],
    ...(order === undefined ? {} : { order }),
    ...(predicate === undefined ? {} : { predicate }),
    ...(include === undefined || include.length === 0 ? {} : { include }),
  };
}

async function existingColumns(
  client: QueryClient,
  tableOid: number,
  columns: readonly string[],
): Promise<Set<string>> {
  const result = await client.query(
    `SELECT a.attname AS name FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped
        AND a.attname = ANY ($2::text[])`,
    [tableOid, [...columns]],
  );
  return new Set(result.rows.map((r) => String(asRow(r).name)));
}

interface Plan {
  readonly table: Table;
  readonly shape: IndexShape;
  readonly name: string;
  readonly sql: string;
}

type Prepared =
  | { readonly kind: 'plan'; readonly plan: Plan }
  | {
      readonly kind: 'done';
      readonly status: ApplyStatus;
      readonly reason: string;
      readonly indexName?: string;
    };

/** Checks a recommendation against the catalog and decides the statement. */
async function prepare(client: QueryClient, rec: IndexRecommendation): Promise<Prepared> {
  const shape = shapeOf(rec);
  if (typeof shape === 'string') return { kind: 'done', status: 'skipped', reason: shape };
  const table = await resolveTable(client, shape.schema, shape.table);
  if (table === undefined) {
    return { kind: 'done', status: 'skipped', reason: 'no such table (checked in the catalog)' };
  }
  if (!['r', 'm', 'p'].includes(table.kind)) {
    return { kind: 'done', status: 'skipped', reason: 'not a table or materialized view' };
  }
  const wanted = [
    ...shape.columns,
    ...(shape.include ?? []),
    ...(shape.predicate ? [shape.predicate.column] : []),
  ];
  const found = await existingColumns(client, table.oid, wanted);
  const missing = wanted.filter((c) => !found.has(c));
  if (missing.length > 0) {
    return {
      kind: 'done',
      status: 'skipped',
      reason: `no such column on ${table.schema}.${table.name}: ${missing.join(', ')}`,
    };
  }
  const names = indexNames(shape);
  const covering = coveringIndex(await tableIndexes(client, table), table.oid, shape, [
    names.plain,
    names.hashed,
  ]);
  if (covering !== undefined) {
    return {
      kind: 'done',
      status: 'exists',
      reason: `the valid index ${covering.name} already leads with these columns`,
      indexName: covering.name,
    };
  }
  const taken = await lookupNames(client, table.schema, [names.plain, names.hashed]);
  const name = pickName(shape, table.oid, taken);
  if (name === undefined) {
    return { kind: 'done', status: 'skipped', reason: 'both candidate index names are taken' };
  }
  const sql = createIndexSql(shape, name, table.kind === 'p' ? 'only' : 'concurrently');
  return { kind: 'plan', plan: { table, shape, name, sql } };
}

function lockedResult(rec: IndexRecommendation, plan: Plan): ApplyResult {
  return {
    recommendation: rec,
    status: 'locked',
    sql: plan.sql,
    indexName: plan.name,
    reason:
      `Another session holds the index lock of ${plan.table.schema}.${plan.table.name} ` +
      '(another instance is building there); nothing was done.',
  };
}

async function applyOne(
  session: Session,
  rec: IndexRecommendation,
  options: { readonly dryRun: boolean; readonly timeouts: SessionSettings },
): Promise<ApplyResult> {
  const prepared = await prepare(session.client, rec);
  if (prepared.kind === 'done') {
    return {
      recommendation: rec,
      status: prepared.status,
      reason: prepared.reason,
      ...(prepared.indexName === undefined ? {} : { indexName: prepared.indexName }),
    };
  }
  const { plan } = prepared;
  if (options.dryRun) {
    return { recommendation: rec, status: 'dry-run', sql: plan.sql, indexName: plan.name };
  }
  const key = indexLockKey(plan.table.schema, plan.table.name);
  const held = await underAdvisoryLock(session, key, () =>
    withSessionSettings(session, options.timeouts, async (): Promise<ApplyResult> => {
      // Under the lock, look again: another instance may have finished it meanwhile.
      const again = await prepare(session.client, rec);
      if (again.kind === 'done') {
        return {
          recommendation: rec,
          status: again.status,
          reason: again.reason,
          ...(again.indexName === undefined ? {} : { indexName: again.indexName }),
        };
      }
      const { table, shape, name, sql } = again.plan;
      try {
        if (table.kind === 'p') await buildPartitioned(session, table, shape, name);
        else await buildConcurrently(session, table, shape, name);
      } catch (error) {
        const failure = ddlFailure(`Building ${name}`, error);
        return {
          recommendation: rec,
          status: 'failed',
          sql,
          indexName: name,
          reason: failure.message,
          error: failure,
        };
      }
      return { recommendation: rec, status: 'created', sql, indexName: name };
    }),
  );
  return held.locked ? held.value : lockedResult(rec, plan);
}

/**
 * Builds the recommendations with `priority >= priorityThreshold` (default 4), the highest
 * first, each with CREATE INDEX CONCURRENTLY under the table's advisory lock
 * (`indexLockKey(schema, table)`): when another session holds it, the result is 'locked' and
 * nothing is done. Every name is checked in the catalog and the statement is rebuilt from
 * it; the recommendation's `sql` text is never executed. After a build the index must be
 * valid; an invalid leftover is dropped. Results come back in the order of `recs`.
 *
 * `client`: one connection to the primary, outside a transaction block (a pg.Client, a
 * checked-out PoolClient), or a pg.Pool (a connection is checked out for the batch). Throws
 * a PgPulseError when it is in a transaction, on a replica, or not one session.
 */
export async function applyRecommendations(
  client: QueryClient,
  recs: readonly IndexRecommendation[],
  options: ApplyOptions = {},
): Promise<ApplyResult[]> {
  const issues: ConfigIssue[] = [];
  const threshold = options.priorityThreshold ?? 4;
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) {
    issues.push({ field: 'priorityThreshold', message: 'must be a number from 1 to 5' });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const limits = timeouts(options);
  const dryRun = options.dryRun === true;
  const results = new Map<number, ApplyResult>();
  const todo: number[] = [];
  recs.forEach((rec, i) => {
    const priority = typeof rec?.priority === 'number' ? rec.priority : 0;
    if (priority >= threshold) todo.push(i);
    else {
      results.set(i, {
        recommendation: rec,
        status: 'below-threshold',
        reason: `priority ${priority} is under the threshold ${threshold}`,
      });
    }
  });
  todo.sort((a, b) => recs[b]!.priority - recs[a]!.priority || a - b);
  if (todo.length > 0) {
    await withSession(
      client,
      async (session) => {
        for (const i of todo) {
          results.set(i, await applyOne(session, recs[i]!, { dryRun, timeouts: limits }));
        }
      },
      { requireOutsideTransaction: !dryRun },
    );
  }
  return recs.map((_, i) => results.get(i)!);
}
