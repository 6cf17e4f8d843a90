import { type QueryClient, qualified } from '../sql/index.js';
import { asRow, bool, json, num, str, timestamp } from './sql.js';

/**
 * What the index advisor reads from the catalog. Names travel only as bound parameters; every
 * name in a result comes from the catalog itself (invariant 7).
 */

/** Which tables an analysis covers; absent fields mean "every user table". */
export interface Scope {
  readonly schema?: string | undefined;
  readonly tables?: readonly string[] | undefined;
}

/** One key column of an index (INCLUDE columns are listed apart). */
export interface IndexKey {
  /** pg_attribute.attnum on the table; 0 for an expression. */
  readonly attnum: number;
  /** The column's name; undefined for an expression. */
  readonly column: string | undefined;
  /** As pg_get_indexdef prints this column alone: a name or an expression. */
  readonly definition: string;
  readonly opclass: number;
  readonly collation: number;
  /** pg_index.indoption: bit 0 DESC, bit 1 NULLS FIRST. */
  readonly option: number;
}

export interface IndexInfo {
  readonly oid: number;
  readonly tableOid: number;
  readonly schema: string;
  readonly table: string;
  /** relkind of the table: 'r' table, 'm' materialized view, 'p' partitioned table. */
  readonly tableKind: string;
  readonly name: string;
  /** relkind of the index: 'i', or 'I' for a partitioned index. */
  readonly kind: string;
  /** Access method: btree, hash, gist, gin, brin... */
  readonly method: string;
  readonly unique: boolean;
  readonly primary: boolean;
  readonly exclusion: boolean;
  readonly nullsNotDistinct: boolean;
  readonly valid: boolean;
  readonly ready: boolean;
  /** The index of one partition, attached to a partitioned index. */
  readonly isPartition: boolean;
  readonly replicaIdentity: boolean;
  readonly keys: readonly IndexKey[];
  /** INCLUDE columns, by attnum (0 never occurs: INCLUDE takes plain columns only). */
  readonly include: readonly number[];
  readonly includeNames: readonly string[];
  /** pg_get_expr of the predicate of a partial index. */
  readonly predicate: string | undefined;
  readonly definition: string;
  readonly sizeBytes: number;
  /** Constraints that need this index (its own PK/UNIQUE/EXCLUDE, or FKs referencing it). */
  readonly constraints: readonly string[];
  /** pg_stat_all_indexes.idx_scan on the connected node; undefined without statistics. */
  readonly scans: number | undefined;
  /** pg_stat_all_indexes.last_idx_scan (PostgreSQL 16+). */
  readonly lastScanAt: string | undefined;
  /** A CREATE INDEX CONCURRENTLY or REINDEX is building it right now. */
  readonly building: boolean;
  readonly relpages: number;
  /** pg_class.reltuples of the index; -1 when never vacuumed or analyzed. */
  readonly reltuples: number;
  /** The index's fillfactor reloption, when set. */
  readonly fillfactor: number | undefined;
  readonly temporary: boolean;
}

const SCOPE_SQL = `
  n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema'])
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND ($1::text IS NULL OR n.nspname = $1::text)
  AND ($2::text[] IS NULL OR t.relname = ANY ($2::text[]))`;

const INDEXES_SQL = `
SELECT i.indexrelid::int8 AS oid, i.indrelid::int8 AS table_oid, n.nspname AS schema,
       t.relname AS table, t.relkind::text AS table_kind, c.relname AS name,
       c.relkind::text AS kind, am.amname AS method, i.indisunique AS unique,
       i.indisprimary AS primary, i.indisexclusion AS exclusion,
       COALESCE((pg_catalog.to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false)
         AS nulls_not_distinct,
       i.indisvalid AS valid, i.indisready AS ready, c.relispartition AS is_partition,
       i.indisreplident AS replica_identity, i.indnkeyatts AS key_count,
       (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                 'position', k.n, 'attnum', i.indkey[k.n - 1], 'column', a.attname,
                 'definition', pg_catalog.pg_get_indexdef(i.indexrelid, k.n, false),
                 'opclass', i.indclass[k.n - 1], 'collation', i.indcollation[k.n - 1],
                 'option', i.indoption[k.n - 1]) ORDER BY k.n)
          FROM pg_catalog.generate_series(1, i.indnatts) AS k(n)
          LEFT JOIN pg_catalog.pg_attribute a
            ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k.n - 1] AND a.attnum > 0)
         AS columns,
       pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS predicate,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
       pg_catalog.pg_relation_size(i.indexrelid) AS size,
       ARRAY(SELECT co.conname::text FROM pg_catalog.pg_constraint co
              WHERE co.conindid = i.indexrelid ORDER BY 1) AS constraints,
       s.idx_scan AS scans, (pg_catalog.to_jsonb(s) ->> 'last_idx_scan') AS last_scan,
       EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_create_index p
                WHERE p.index_relid = i.indexrelid) AS building,
       c.relpages::int8 AS relpages, c.reltuples::float8 AS reltuples,
       (SELECT pg_catalog.split_part(o, '=', 2) FROM pg_catalog.unnest(c.reloptions) AS o
         WHERE o LIKE 'fillfactor=%') AS fillfactor,
       c.relpersistence = 't' AS temporary
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_catalog.pg_am am ON am.oid = c.relam
  LEFT JOIN pg_catalog.pg_stat_all_indexes s ON s.indexrelid = i.indexrelid
 WHERE t.relkind IN ('r', 'm', 'p') AND ${SCOPE_SQL}
 ORDER BY n.nspname, t.relname, c.relname`;

function scopeParams(scope: Scope): unknown[] {
  return [scope.schema ?? null, scope.tables === undefined ? null : [...scope.tables]];
}

function parseIndex(raw: unknown): IndexInfo | undefined {
  const r = asRow(raw);
  const oid = num(r.oid);
  const tableOid = num(r.table_oid);
  const schema = str(r.schema);
  const table = str(r.table);
  const name = str(r.name);
  if (oid === undefined || tableOid === undefined || !schema || !table || !name) return undefined;
  const keyCount = num(r.key_count) ?? 0;
  const columns = json(r.columns);
  const all = Array.isArray(columns) ? columns.map(asRow) : [];
  const keys: IndexKey[] = all.slice(0, keyCount).map((k) => ({
    attnum: num(k.attnum) ?? 0,
    column: (num(k.attnum) ?? 0) > 0 ? str(k.column) : undefined,
    definition: str(k.definition) ?? '',
    opclass: num(k.opclass) ?? 0,
    collation: num(k.collation) ?? 0,
    option: num(k.option) ?? 0,
  }));
  const included = all.slice(keyCount);
  const constraints = Array.isArray(r.constraints)
    ? r.constraints.filter((c): c is string => typeof c === 'string')
    : [];
  const fillfactor = num(r.fillfactor);
  return {
    oid,
    tableOid,
    schema,
    table,
    tableKind: str(r.table_kind) ?? 'r',
    name,
    kind: str(r.kind) ?? 'i',
    method: str(r.method) ?? '',
    unique: bool(r.unique),
    primary: bool(r.primary),
    exclusion: bool(r.exclusion),
    nullsNotDistinct: bool(r.nulls_not_distinct),
    valid: bool(r.valid),
    ready: bool(r.ready),
    isPartition: bool(r.is_partition),
    replicaIdentity: bool(r.replica_identity),
    keys,
    include: included.map((k) => num(k.attnum) ?? 0),
    includeNames: included.map((k) => str(k.column) ?? str(k.definition) ?? ''),
    predicate: str(r.predicate) ?? undefined,
    definition: str(r.definition) ?? '',
    sizeBytes: num(r.size) ?? 0,
    constraints,
    scans: num(r.scans),
    lastScanAt: timestamp(r.last_scan),
    building: bool(r.building),
    relpages: num(r.relpages) ?? 0,
    reltuples: num(r.reltuples) ?? -1,
    ...(fillfactor === undefined ? { fillfactor: undefined } : { fillfactor }),
    temporary: bool(r.temporary),
  };
}

/** Every index on the tables in scope, valid or not. */
export async function loadIndexes(client: QueryClient, scope: Scope): Promise<IndexInfo[]> {
  const result = await client.query(INDEXES_SQL, scopeParams(scope));
  return result.rows.map(parseIndex).filter((i): i is IndexInfo => i !== undefined);
}

export interface ForeignKeyInfo {
  readonly constraint: string;
  readonly tableOid: number;
  readonly schema: string;
  readonly table: string;
  readonly tableKind: string;
  /** The referencing columns, in the constraint's order. */
  readonly attnums: readonly number[];
  readonly columns: readonly string[];
  readonly referencedSchema: string;
  readonly referencedTable: string;
  /** Rows in the referencing table (reltuples, or live tuples before the first ANALYZE). */
  readonly rows: number;
  /** Deletes plus updates on the referenced table since statistics were reset. */
  readonly referencedChanges: number;
}

const FOREIGN_KEYS_SQL = `
SELECT co.conname AS constraint, co.conrelid::int8 AS table_oid, n.nspname AS schema,
       t.relname AS table, t.relkind::text AS table_kind,
       (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(k.attnum, a.attname) ORDER BY k.ord)
          FROM pg_catalog.unnest(co.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum)
         AS columns,
       rn.nspname AS referenced_schema, rt.relname AS referenced_table,
       GREATEST(t.reltuples, COALESCE(st.n_live_tup, 0))::float8 AS rows,
       (COALESCE(rs.n_tup_del, 0) + COALESCE(rs.n_tup_upd, 0))::float8 AS referenced_changes
  FROM pg_catalog.pg_constraint co
  JOIN pg_catalog.pg_class t ON t.oid = co.conrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_catalog.pg_class rt ON rt.oid = co.confrelid
  JOIN pg_catalog.pg_namespace rn ON rn.oid = rt.relnamespace
  LEFT JOIN pg_catalog.pg_stat_all_tables st ON st.relid = t.oid
  LEFT JOIN pg_catalog.pg_stat_all_tables rs ON rs.relid = rt.oid
 WHERE co.contype = 'f' AND co.conparentid = 0 AND t.relkind IN ('r', 'p') AND ${SCOPE_SQL}
 ORDER BY n.nspname, t.relname, co.conname`;

/**
 * Foreign keys of the tables in scope. Those a partition inherits from its parent's
 * constraint (conparentid <> 0) are left out: the parent's index covers them.
 */
export async function loadForeignKeys(
  client: QueryClient,
  scope: Scope,
): Promise<ForeignKeyInfo[]> {
  const result = await client.query(FOREIGN_KEYS_SQL, scopeParams(scope));
  const out: ForeignKeyInfo[] = [];
  for (const raw of result.rows) {
    const r = asRow(raw);
    const tableOid = num(r.table_oid);
    const pairs = json(r.columns);
    if (tableOid === undefined || !Array.isArray(pairs)) continue;
    const attnums: number[] = [];
    const columns: string[] = [];
    for (const pair of pairs) {
      if (!Array.isArray(pair)) continue;
      const attnum = num(pair[0]);
      const column = str(pair[1]);
      if (attnum === undefined || column === undefined) continue;
      attnums.push(attnum);
      columns.push(column);
    }
    if (columns.length === 0) continue;
    out.push({
      constraint: str(r.constraint) ?? '',
      tableOid,
      schema: str(r.schema) ?? '',
      table: str(r.table) ?? '',
      tableKind: str(r.table_kind) ?? 'r',
      attnums,
      columns,
      referencedSchema: str(r.referenced_schema) ?? '',
      referencedTable: str(r.referenced_table) ?? '',
      rows: Math.max(0, num(r.rows) ?? 0),
      referencedChanges: num(r.referenced_changes) ?? 0,
    });
  }
  return out;
}

/** Whether this connection reads a replica, and since when its statistics count. */
export async function nodeFacts(
  client: QueryClient,
): Promise<{ readonly replica: boolean; readonly statsSince: string | undefined }> {
  const result = await client.query(
    `SELECT pg_catalog.pg_is_in_recovery() AS replica,
            (SELECT d.stats_reset FROM pg_catalog.pg_stat_database d
              WHERE d.datname = pg_catalog.current_database()) AS stats_reset`,
  );
  const r = asRow(result.rows[0]);
  return { replica: bool(r.replica), statsSince: timestamp(r.stats_reset) };
}

/** A table found by its exact name: its oid, kind (`relkind`) and count of live columns. */
export interface ResolvedTable {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: string;
  readonly columns: number;
}

/**
 * The relation `"schema"."name"` names, if it is exactly that (to_regclass, bound): a name over
 * 63 bytes resolves to its truncation, so the catalog's spelling must come back unchanged.
 */
export async function resolveTable(
  client: QueryClient,
  schema: string,
  name: string,
): Promise<ResolvedTable | undefined> {
  const result = await client.query(
    `SELECT c.oid::int8 AS oid, c.relkind::text AS kind, n.nspname AS schema, c.relname AS name,
            (SELECT count(*) FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::int AS columns
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = pg_catalog.to_regclass($1)`,
    [qualified(schema, name)],
  );
  const r = asRow(result.rows[0]);
  const oid = num(r.oid);
  if (oid === undefined || r.schema !== schema || r.name !== name) return undefined;
  return { oid, schema, name, kind: str(r.kind) ?? '', columns: num(r.columns) ?? 0 };
}
