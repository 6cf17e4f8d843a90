/**
 * Catalog look-ups for the analysis. Every name travels as a bound parameter and is resolved
 * by `to_regclass`, so nothing a user wrote is ever concatenated into SQL (invariant 7).
 */

import { type QueryClient, qualified } from '../sql/index.js';

export interface RelationInfo {
  /** The key it was requested by: `qualified(schema, relation)`. */
  readonly requested: string;
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** 'r' table, 'p' partitioned table, 'm' materialized view... */
  readonly kind: string;
  /** pg_class.reltuples, or the live-tuple count when the table was never analyzed. */
  readonly rows: number | undefined;
  readonly modifiedSinceAnalyze: number | undefined;
  /**
   * The later of the last manual and automatic ANALYZE, epoch ms, as the node read counts it
   * (pg_stat_*: per node, empty on a replica and after pg_stat_reset()). Display only.
   */
  readonly lastAnalyzedAt: number | undefined;
  /**
   * Whether the planner has column statistics for it (pg_statistic, through pg_stats). A
   * catalog, so replicas hold the primary's copy and pg_stat_reset() leaves it alone: this, not
   * lastAnalyzedAt, decides "never analyzed".
   */
  readonly hasStatistics: boolean;
}

function num(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

function time(value: unknown): number | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.getTime();
  if (typeof value === 'string') {
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

function row(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

const RELATIONS_SQL = `
SELECT r.requested, c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name,
       c.relkind::text AS kind, c.reltuples::float8 AS reltuples, s.n_live_tup::float8 AS live,
       s.n_mod_since_analyze::float8 AS modified,
       GREATEST(s.last_analyze, s.last_autoanalyze) AS analyzed,
       EXISTS (SELECT 1 FROM pg_catalog.pg_stats st
                WHERE st.schemaname = n.nspname AND st.tablename = c.relname) AS has_stats
  FROM pg_catalog.unnest($1::text[]) AS r(requested)
  JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(r.requested)
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid`;

/**
 * Size and statistics freshness of relations named in a plan; unknown names are absent, and so
 * is every relation without a schema: a bare name resolves through search_path, which may find
 * a same-named table in another schema than the one the statement read (EXPLAIN VERBOSE names
 * the schema of every scan).
 */
export async function fetchRelations(
  client: QueryClient,
  relations: Iterable<{ readonly relation: string; readonly schema?: string | undefined }>,
): Promise<Map<string, RelationInfo>> {
  const keys = [
    ...new Set(
      [...relations]
        .filter((r) => typeof r.schema === 'string' && r.schema.length > 0)
        .map((r) => qualified(r.schema, r.relation)),
    ),
  ];
  const found = new Map<string, RelationInfo>();
  if (keys.length === 0) return found;
  const result = await client.query(RELATIONS_SQL, [keys]);
  for (const raw of result.rows) {
    const r = row(raw);
    const reltuples = num(r.reltuples);
    const live = num(r.live);
    const requested = String(r.requested);
    found.set(requested, {
      requested,
      oid: num(r.oid) ?? 0,
      schema: String(r.schema),
      name: String(r.name),
      kind: String(r.kind),
      // reltuples is -1 until the first VACUUM or ANALYZE (PostgreSQL 14+).
      rows: reltuples !== undefined && reltuples >= 0 ? reltuples : live,
      modifiedSinceAnalyze: num(r.modified),
      lastAnalyzedAt: time(r.analyzed),
      hasStatistics: r.has_stats === true,
    });
  }
  return found;
}

export interface ColumnInfo {
  readonly name: string;
  readonly notNull: boolean;
}

/** The named columns that exist on the relation (dropped and system columns excluded). */
export async function fetchColumns(
  client: QueryClient,
  relation: string,
  columns: readonly string[],
): Promise<Map<string, ColumnInfo>> {
  const result = await client.query(
    `SELECT a.attname AS name, a.attnotnull AS not_null
       FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
        AND a.attname = ANY($2::text[])`,
    [relation, [...columns]],
  );
  const found = new Map<string, ColumnInfo>();
  for (const raw of result.rows) {
    const r = row(raw);
    found.set(String(r.name), { name: String(r.name), notNull: r.not_null === true });
  }
  return found;
}

/** Leading column of each valid index on the relation (expression indexes give none). */
export async function fetchIndexLeadingColumns(
  client: QueryClient,
  relation: string,
): Promise<Set<string>> {
  const result = await client.query(
    `SELECT a.attname AS name
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = pg_catalog.to_regclass($1) AND i.indisvalid`,
    [relation],
  );
  return new Set(result.rows.map((raw) => String(row(raw).name)));
}

/**
 * True when every named function is known to the catalog and none is VOLATILE. The classifier
 * already refuses the built-in volatile ones; this catches user functions (invariant 1) before
 * an EXPLAIN ANALYZE runs them. An unknown name counts as volatile.
 */
export async function functionsAreStable(
  client: QueryClient,
  functions: readonly string[],
): Promise<boolean> {
  if (functions.length === 0) return true;
  const names = functions.map((f) => {
    const dot = f.lastIndexOf('.');
    return dot === -1
      ? { schema: undefined, name: f }
      : { schema: f.slice(0, dot), name: f.slice(dot + 1) };
  });
  const result = await client.query(
    `SELECT p.proname AS name, n.nspname AS schema, p.provolatile::text AS volatility
       FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      WHERE p.proname = ANY($1::text[])`,
    [[...new Set(names.map((n) => n.name))]],
  );
  const rows = result.rows.map(row);
  return names.every(({ schema, name }) => {
    const matches = rows.filter(
      (r) => r.name === name && (schema === undefined || r.schema === schema),
    );
    return matches.length > 0 && matches.every((r) => r.volatility !== 'v');
  });
}

/** server_version_num of the connected server, e.g. 180004. */
export async function serverVersion(client: QueryClient): Promise<number> {
  const result = await client.query(
    "SELECT pg_catalog.current_setting('server_version_num')::int AS version",
  );
  return num(row(result.rows[0]).version) ?? 0;
}
