import { IndexMaintenanceError } from '../errors/index.js';
import {
  createIndexSql,
  dropIndexSql,
  type IndexShape,
  indexNames,
  type QueryClient,
  qualified,
} from '../sql/index.js';
import { type IndexInfo, loadIndexes } from './catalog.js';
import { lookupNames, pickName, type RelationState } from './index-names.js';
import type { Session } from './session.js';
import { asRow, ddlFailure, num, str } from './sql.js';

/**
 * Building one index: concurrently on a plain table, or on a partitioned table partition by
 * partition, verified valid, and an invalid index a failed build left dropped again.
 */

export interface Table {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: string;
}

export async function tableIndexes(client: QueryClient, table: Table): Promise<IndexInfo[]> {
  const all = await loadIndexes(client, { schema: table.schema, tables: [table.name] });
  return all.filter((i) => i.tableOid === table.oid);
}

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
export async function buildConcurrently(
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
export async function cleanupAfterFailure(
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
export function withNote(failure: IndexMaintenanceError, note: string): IndexMaintenanceError {
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
export async function buildPartitioned(
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
