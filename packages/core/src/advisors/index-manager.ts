import {
  ConfigError,
  type ConfigIssue,
  IndexMaintenanceError,
  type PgPulseError,
} from '../errors/index.js';
import {
  createIndexSql,
  dropIndexSql,
  type IndexShape,
  indexLockKey,
  indexNames,
  type PartialPredicate,
  predicateSql,
  type QueryClient,
  qualified,
  reindexSql,
  type SortDirection,
} from '../sql/index.js';
import { type IndexInfo, loadIndexes } from './catalog.js';
import { coveringIndex } from './coverage.js';
import { isDroppable } from './duplicates.js';
import {
  type IndexRecommendation,
  lookupNames,
  pickName,
  type RelationState,
} from './recommendations.js';
import {
  advisoryUnlock,
  type Session,
  type Timeouts,
  tryAdvisoryLock,
  withSession,
  withTimeouts,
} from './session.js';
import { asRow, ddlFailure, num, str } from './sql.js';

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

/** Time limits for index DDL: `lock_timeout` and `statement_timeout` while it runs. */
export interface MaintenanceOptions {
  /** lock_timeout while it runs, ms. Default: the session's. */
  readonly lockTimeoutMs?: number;
  /** statement_timeout while it runs, ms. Default: the session's. */
  readonly statementTimeoutMs?: number;
}

export type RebuildStatus = 'rebuilt' | 'locked' | 'missing' | 'failed';

/**
 * What `rebuildIndex` did: rebuilt (REINDEX CONCURRENTLY), absent, refused or failed, with the
 * statement and the reason.
 */
export interface RebuildResult {
  readonly status: RebuildStatus;
  readonly schema: string;
  readonly name: string;
  readonly sql?: string;
  readonly reason?: string;
  readonly error?: PgPulseError;
}

export type DropStatus = 'dropped' | 'locked' | 'missing' | 'refused' | 'failed';

/** What `dropIndex` did: dropped, absent, refused or failed, with the statement and the reason. */
export interface DropResult {
  readonly status: DropStatus;
  readonly schema: string;
  readonly name: string;
  readonly sql?: string;
  readonly reason?: string;
  readonly error?: PgPulseError;
}

// ---------------------------------------------------------------------------------------------
// Options and input checks

function timeoutOption(issues: ConfigIssue[], field: string, value: number | undefined) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    issues.push({ field, message: `must be an integer number of ms >= 0 (got ${String(value)})` });
  }
  return value;
}

function timeouts(options: MaintenanceOptions): Timeouts {
  const issues: ConfigIssue[] = [];
  const lockTimeoutMs = timeoutOption(issues, 'lockTimeoutMs', options.lockTimeoutMs);
  const statementTimeoutMs = timeoutOption(
    issues,
    'statementTimeoutMs',
    options.statementTimeoutMs,
  );
  if (issues.length > 0) throw new ConfigError(issues);
  return { lockTimeoutMs, statementTimeoutMs };
}

const isName = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0 && !value.includes('\0');

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

interface Table {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: string;
}

/** The relation `"schema"."name"` names, if it is exactly that (to_regclass, bound). */
async function resolveTable(
  client: QueryClient,
  schema: string,
  name: string,
): Promise<Table | undefined> {
  const result = await client.query(
    `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = pg_catalog.to_regclass($1)`,
    [qualified(schema, name)],
  );
  const r = asRow(result.rows[0]);
  const oid = num(r.oid);
  // A name over 63 bytes resolves to its truncation: require the exact spelling back.
  if (oid === undefined || r.schema !== schema || r.name !== name) return undefined;
  return { oid, schema, name, kind: str(r.kind) ?? '' };
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

async function tableIndexes(client: QueryClient, table: Table): Promise<IndexInfo[]> {
  const all = await loadIndexes(client, { schema: table.schema, tables: [table.name] });
  return all.filter((i) => i.tableOid === table.oid);
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

// ---------------------------------------------------------------------------------------------
// Building

/** Drops the index if it is (still) an invalid index of `tableOid` and no build is running. */
async function dropIfInvalid(
  session: Session,
  schema: string,
  name: string,
  tableOid: number,
): Promise<void> {
  const state = (await lookupNames(session.client, schema, [name])).get(name);
  if (state === undefined || !isInvalidLeftover(state, tableOid)) return;
  await session.client.query(
    state.kind === 'I'
      ? `DROP INDEX IF EXISTS ${qualified(schema, name)}`
      : dropIndexSql(schema, name),
  );
}

function isInvalidLeftover(state: RelationState, tableOid: number): boolean {
  return (
    (state.kind === 'i' || state.kind === 'I') &&
    state.tableOid === tableOid &&
    !state.valid &&
    !state.building
  );
}

/** Builds one index concurrently on a plain table and verifies it; drops it when invalid. */
async function buildConcurrently(
  session: Session,
  table: Table,
  shape: IndexShape,
  name: string,
): Promise<void> {
  await dropIfInvalid(session, table.schema, name, table.oid);
  const sql = createIndexSql(shape, name, 'concurrently');
  try {
    await session.client.query(sql);
  } catch (error) {
    const failure = ddlFailure(`CREATE INDEX CONCURRENTLY on ${table.schema}.${table.name}`, error);
    throw withNote(failure, await cleanupAfterFailure(session, table.schema, name, table.oid));
  }
  const state = (await lookupNames(session.client, table.schema, [name])).get(name);
  if (state?.kind !== 'i' || state.tableOid !== table.oid) {
    throw new IndexMaintenanceError(
      `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${name} created nothing on ` +
        `${table.schema}.${table.name}: the name belongs to another relation.`,
    );
  }
  if (!state.valid) {
    const note = await cleanupAfterFailure(session, table.schema, name, table.oid);
    throw new IndexMaintenanceError(
      `The index ${name} on ${table.schema}.${table.name} was left invalid.` +
        (note === '' ? ' It was dropped.' : note),
    );
  }
}

/**
 * Drops what a failed build left; when that is blocked too (the long transaction that made
 * the build time out also holds up DROP INDEX CONCURRENTLY), says so: the next run drops the
 * leftover before building again.
 */
async function cleanupAfterFailure(
  session: Session,
  schema: string,
  name: string,
  tableOid: number,
): Promise<string> {
  try {
    await dropIfInvalid(session, schema, name, tableOid);
    return '';
  } catch {
    return (
      ` The invalid index ${name} it left could not be dropped yet: adviseIndexes lists it ` +
      'as invalid, and the next apply of the same recommendation (or dropIndex) removes it.'
    );
  }
}

/** `failure` with `note` added to its message (same SQLSTATE, original kept as the cause). */
function withNote(failure: IndexMaintenanceError, note: string): IndexMaintenanceError {
  if (note === '') return failure;
  return new IndexMaintenanceError(`${failure.message}${note}`, failure.sqlState, {
    cause: failure,
  });
}

interface Partition {
  readonly table: Table;
}

async function partitionsOf(client: QueryClient, parentOid: number): Promise<Partition[]> {
  const result = await client.query(
    `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
       FROM pg_catalog.pg_inherits i
       JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE i.inhparent = $1::pg_catalog.oid
      ORDER BY n.nspname, c.relname`,
    [parentOid],
  );
  return result.rows.flatMap((raw) => {
    const r = asRow(raw);
    const oid = num(r.oid);
    const schema = str(r.schema);
    const name = str(r.name);
    if (oid === undefined || schema === undefined || name === undefined) return [];
    return [{ table: { oid, schema, name, kind: str(r.kind) ?? '' } }];
  });
}

/** The index of `partitionOid` already attached to the partitioned index `parentIndexOid`. */
async function attachedIndex(
  client: QueryClient,
  parentIndexOid: number,
  partitionOid: number,
): Promise<boolean> {
  const result = await client.query(
    `SELECT 1 FROM pg_catalog.pg_inherits h
       JOIN pg_catalog.pg_index x ON x.indexrelid = h.inhrelid
      WHERE h.inhparent = $1::pg_catalog.oid AND x.indrelid = $2::pg_catalog.oid`,
    [parentIndexOid, partitionOid],
  );
  return result.rows.length > 0;
}

/**
 * A partitioned table cannot be indexed concurrently as a whole. As PostgreSQL documents it:
 * create the parent index with ON ONLY (catalog only, invalid at first), build each
 * partition's index concurrently, attach it; the parent index turns valid once every
 * partition has one. Sub-partitioned partitions recurse. Every step is idempotent, so a run
 * that fails half-way is completed by the next one.
 */
async function buildPartitioned(
  session: Session,
  table: Table,
  shape: IndexShape,
  name: string,
): Promise<void> {
  try {
    await session.client.query(createIndexSql(shape, name, 'only'));
  } catch (error) {
    throw ddlFailure(`CREATE INDEX ON ONLY ${table.schema}.${table.name}`, error);
  }
  const parent = (await lookupNames(session.client, table.schema, [name])).get(name);
  if (parent?.kind !== 'I' || parent.tableOid !== table.oid) {
    throw new IndexMaintenanceError(
      `The name ${name} belongs to another relation than an index of ${table.schema}.${table.name}.`,
    );
  }
  if (parent.valid) return;
  for (const { table: partition } of await partitionsOf(session.client, table.oid)) {
    if (await attachedIndex(session.client, parent.oid, partition.oid)) continue;
    if (partition.kind !== 'r' && partition.kind !== 'p') {
      throw new IndexMaintenanceError(
        `Partition ${partition.schema}.${partition.name} cannot be indexed (relkind ` +
          `${partition.kind}), so the index on ${table.schema}.${table.name} cannot become valid.`,
      );
    }
    const childShape: IndexShape = { ...shape, schema: partition.schema, table: partition.name };
    const childNames = indexNames(childShape);
    const taken = await lookupNames(session.client, partition.schema, [
      childNames.plain,
      childNames.hashed,
    ]);
    // A valid index of ours built by an earlier run that stopped before attaching it.
    const built = [childNames.plain, childNames.hashed].find((n) => {
      const state = taken.get(n);
      return state?.kind === 'i' && state.tableOid === partition.oid && state.valid;
    });
    const childName = built ?? pickName(childShape, partition.oid, taken);
    if (childName === undefined) {
      throw new IndexMaintenanceError(
        `No free index name on partition ${partition.schema}.${partition.name}.`,
      );
    }
    if (partition.kind === 'p') {
      await buildPartitioned(session, partition, childShape, childName);
    } else if (built === undefined) {
      await buildConcurrently(session, partition, childShape, childName);
    }
    try {
      await session.client.query(
        `ALTER INDEX ${qualified(table.schema, name)} ATTACH PARTITION ${qualified(partition.schema, childName)}`,
      );
    } catch (error) {
      throw ddlFailure(`ALTER INDEX ${name} ATTACH PARTITION ${childName}`, error);
    }
  }
  const state = (await lookupNames(session.client, table.schema, [name])).get(name);
  if (state?.valid !== true) {
    throw new IndexMaintenanceError(
      `The partitioned index ${name} on ${table.schema}.${table.name} is not valid after ` +
        'attaching every partition; apply again to complete it.',
    );
  }
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
  options: { readonly dryRun: boolean; readonly timeouts: Timeouts },
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
  if (!(await tryAdvisoryLock(session, key))) return lockedResult(rec, plan);
  try {
    return await withTimeouts(session, options.timeouts, async () => {
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
    });
  } finally {
    await release(session, key);
  }
}

async function release(session: Session, key: bigint): Promise<void> {
  try {
    await advisoryUnlock(session, key);
  } catch {
    // A broken connection releases its locks as it closes; never reuse it.
    session.taint();
  }
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

// ---------------------------------------------------------------------------------------------
// Rebuild and drop

interface IndexTarget {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: string;
  readonly table: Table;
}

async function resolveIndex(
  client: QueryClient,
  schema: string,
  name: string,
): Promise<IndexTarget | undefined> {
  if (!isName(schema) || !isName(name)) return undefined;
  const result = await client.query(
    `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
            t.oid::int8 AS table_oid, tn.nspname AS table_schema, t.relname AS table_name,
            t.relkind::text AS table_kind
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
       JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
       JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
      WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind IN ('i', 'I')`,
    [qualified(schema, name)],
  );
  const r = asRow(result.rows[0]);
  const oid = num(r.oid);
  const tableOid = num(r.table_oid);
  if (oid === undefined || tableOid === undefined || r.schema !== schema || r.name !== name) {
    return undefined;
  }
  return {
    oid,
    schema,
    name,
    kind: str(r.kind) ?? 'i',
    table: {
      oid: tableOid,
      schema: str(r.table_schema) ?? '',
      name: str(r.table_name) ?? '',
      kind: str(r.table_kind) ?? '',
    },
  };
}

/** Invalid indexes of a table named like REINDEX CONCURRENTLY's copies of `name`. */
async function reindexLeftovers(
  client: QueryClient,
  tableOid: number,
  name: string,
): Promise<{ readonly schema: string; readonly name: string }[]> {
  const result = await client.query(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE i.indrelid = $1::pg_catalog.oid AND NOT i.indisvalid
        AND pg_catalog.left(c.relname, pg_catalog.length($2)) = $2
        AND pg_catalog.substr(c.relname, pg_catalog.length($2) + 1) ~ '^_cc(new|old)[0-9]*$'`,
    [tableOid, name],
  );
  return result.rows.flatMap((raw) => {
    const r = asRow(raw);
    const s = str(r.schema);
    const n = str(r.name);
    return s === undefined || n === undefined ? [] : [{ schema: s, name: n }];
  });
}

interface IndexOutcome<S extends string> {
  readonly status: S;
  readonly schema: string;
  readonly name: string;
  readonly sql?: string;
  readonly reason?: string;
  readonly error?: PgPulseError;
}

/**
 * The frame of every maintenance statement on one existing index: look it up in the catalog
 * ('missing' when the exact name is not an index), let `plan` refuse it or give its SQL, take the
 * table's advisory lock ('locked' when another session holds it), run `work` under the
 * configured timeouts, and release the lock whatever happens.
 */
function onIndexUnderLock<S extends string>(
  client: QueryClient,
  schema: string,
  name: string,
  options: MaintenanceOptions,
  plan: (session: Session, target: IndexTarget) => Promise<{ sql: string } | { refused: string }>,
  work: (session: Session, target: IndexTarget, sql: string) => Promise<IndexOutcome<S>>,
): Promise<IndexOutcome<S | 'missing' | 'locked' | 'refused'>> {
  const limits = timeouts(options);
  return withSession(
    client,
    async (session): Promise<IndexOutcome<S | 'missing' | 'locked' | 'refused'>> => {
      const target = await resolveIndex(session.client, schema, name);
      if (target === undefined) {
        return {
          status: 'missing',
          schema,
          name,
          reason: 'no such index (checked in the catalog)',
        };
      }
      const planned = await plan(session, target);
      if ('refused' in planned) return { status: 'refused', schema, name, reason: planned.refused };
      const { sql } = planned;
      const key = indexLockKey(target.table.schema, target.table.name);
      if (!(await tryAdvisoryLock(session, key))) {
        return {
          status: 'locked',
          schema,
          name,
          sql,
          reason: `Another session holds the index lock of ${target.table.schema}.${target.table.name}.`,
        };
      }
      try {
        return await withTimeouts(session, limits, () => work(session, target, sql));
      } finally {
        await release(session, key);
      }
    },
    { requireOutsideTransaction: true },
  );
}

/**
 * REINDEX INDEX CONCURRENTLY, for a bloated or invalid index, under the table's advisory lock
 * ('locked' when held). The index is looked up in the catalog first ('missing' when the exact
 * name is not an index). When the rebuild fails, the `_ccnew` copy it leaves is dropped.
 */
export async function rebuildIndex(
  client: QueryClient,
  schema: string,
  name: string,
  options: MaintenanceOptions = {},
): Promise<RebuildResult> {
  const outcome = await onIndexUnderLock<'rebuilt' | 'failed'>(
    client,
    schema,
    name,
    options,
    async (_session, target) => ({ sql: reindexSql(target.schema, target.name) }),
    async (session, target, sql) => {
      const before = new Set(
        (await reindexLeftovers(session.client, target.table.oid, target.name)).map((l) => l.name),
      );
      try {
        await session.client.query(sql);
      } catch (error) {
        let failure = ddlFailure(`REINDEX INDEX CONCURRENTLY ${target.name}`, error);
        for (const leftover of await reindexLeftovers(
          session.client,
          target.table.oid,
          target.name,
        )) {
          if (before.has(leftover.name)) continue;
          const note = await cleanupAfterFailure(
            session,
            leftover.schema,
            leftover.name,
            target.table.oid,
          );
          failure = withNote(failure, note);
        }
        return { status: 'failed', schema, name, sql, reason: failure.message, error: failure };
      }
      return { status: 'rebuilt', schema, name, sql };
    },
  );
  // A rebuild is never refused: plan() always gives SQL.
  return outcome as RebuildResult;
}

/**
 * DROP INDEX CONCURRENTLY IF EXISTS, for a duplicate, unused or invalid index, under the
 * table's advisory lock. Refused for a primary key, an index a constraint needs, the replica
 * identity, a partitioned index or a partition's attached index.
 */
export function dropIndex(
  client: QueryClient,
  schema: string,
  name: string,
  options: MaintenanceOptions = {},
): Promise<DropResult> {
  return onIndexUnderLock<'dropped' | 'failed'>(
    client,
    schema,
    name,
    options,
    async (session, target) => {
      const info = (await tableIndexes(session.client, target.table)).find(
        (i) => i.oid === target.oid,
      );
      const droppable =
        info !== undefined && isDroppable({ ...info, valid: true }) && !info.building;
      return droppable
        ? { sql: dropIndexSql(target.schema, target.name) }
        : {
            refused:
              'pgpulse drops only plain indexes: not a primary key, an index a constraint needs, ' +
              'the replica identity, a partitioned index or a partition\u2019s attached index, nor ' +
              'one being built.',
          };
    },
    async (session, target, sql) => {
      try {
        await session.client.query(sql);
      } catch (error) {
        const failure = ddlFailure(`DROP INDEX CONCURRENTLY ${target.name}`, error);
        return { status: 'failed', schema, name, sql, reason: failure.message, error: failure };
      }
      return { status: 'dropped', schema, name, sql };
    },
  );
}
