import type { PgPulseError } from '../errors/index.js';
import { underAdvisoryLock, withSessionSettings } from '../maintenance/index.js';
import {
  dropIndexSql,
  indexLockKey,
  type QueryClient,
  qualified,
  reindexSql,
} from '../sql/index.js';
import { isDroppable } from './duplicates.js';
import { cleanupAfterFailure, type Table, tableIndexes, withNote } from './index-build.js';
import { isName, type MaintenanceOptions, timeouts } from './maintenance-frame.js';
import { type Session, withSession } from './session.js';
import { asRow, ddlFailure, num, str } from './sql.js';

/**
 * Statements on one existing index, each under its table's advisory lock: REINDEX
 * CONCURRENTLY (`rebuildIndex`) and DROP INDEX CONCURRENTLY (`dropIndex`).
 */

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
      const held = await underAdvisoryLock(session, key, () =>
        withSessionSettings(session, limits, () => work(session, target, sql)),
      );
      if (held.locked) return held.value;
      return {
        status: 'locked',
        schema,
        name,
        sql,
        reason: `Another session holds the index lock of ${target.table.schema}.${target.table.name}.`,
      };
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
