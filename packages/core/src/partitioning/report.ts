import type { QueryClient } from '../sql/index.js';
import { readChildren, record, requirePartitionedParent } from './inspect.js';
import type { PartitionType } from './strategy.js';

/** One partition of a partitioned table, for monitoring and the dashboard. */
export interface PartitionReportEntry {
  readonly schema: string;
  readonly name: string;
  /** `pg_get_expr(relpartbound)`: `FOR VALUES FROM (...) TO (...)`, `FOR VALUES IN (...)`, `DEFAULT`... */
  readonly bound: string;
  readonly isDefault: boolean;
  /** An interrupted `DETACH ... CONCURRENTLY` left it half-detached. */
  readonly detachPending: boolean;
  /** The partition is itself partitioned (its rows and size are those of its own partitions). */
  readonly subpartitioned: boolean;
  /** For a timestamp/timestamptz/date range key: [from, to); null for MINVALUE / MAXVALUE. */
  readonly range: { readonly from: Date | null; readonly to: Date | null } | undefined;
  /** Planner estimate (`reltuples`), or live tuples when never analyzed; undefined if unknown. */
  readonly rows: number | undefined;
  /** Table, indexes and TOAST (`pg_total_relation_size`). */
  readonly bytes: number;
}

/**
 * A partitioned table's layout: its strategy and key, its partitions with their bounds, and gaps or
 * a DEFAULT partition holding rows.
 */
export interface PartitionReport {
  readonly schema: string;
  readonly table: string;
  readonly strategy: PartitionType;
  /** `pg_get_partkeydef`, e.g. `RANGE (ts)`. */
  readonly key: string;
  /** Range partitions by lower bound, others by name; the DEFAULT partition last. */
  readonly partitions: readonly PartitionReportEntry[];
  readonly totalRows: number;
  readonly totalBytes: number;
}

const SIZES_SQL = `
SELECT c.oid::text AS oid, c.reltuples::float8 AS reltuples, s.n_live_tup::float8 AS live,
       pg_catalog.pg_total_relation_size(c.oid)::float8 AS bytes,
       (SELECT COALESCE(sum(pg_catalog.pg_total_relation_size(t.relid)), 0)::float8
          FROM pg_catalog.pg_partition_tree(c.oid) t WHERE t.isleaf) AS leaf_bytes,
       (SELECT COALESCE(sum(GREATEST(lc.reltuples, 0)), 0)::float8
          FROM pg_catalog.pg_partition_tree(c.oid) t
          JOIN pg_catalog.pg_class lc ON lc.oid = t.relid WHERE t.isleaf) AS leaf_rows
  FROM pg_catalog.pg_class c
  LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
 WHERE c.oid = ANY($1::oid[])`;

/**
 * The partitions of `schema.table` with bounds, row estimates and sizes. Read-only catalog
 * queries; throws PartitioningError when the table is missing or not partitioned.
 */
export async function partitionReport(
  client: QueryClient,
  schema: string,
  table: string,
): Promise<PartitionReport> {
  const parent = await requirePartitionedParent(
    client,
    schema,
    table,
    'PARTITION BY RANGE|LIST|HASH (column)',
  );
  const children = await readChildren(client, parent);
  const keyResult = await client.query('SELECT pg_catalog.pg_get_partkeydef($1::oid) AS key', [
    parent.oid,
  ]);
  const key = String(record(keyResult.rows[0]).key);
  const sizes = new Map<string, Record<string, unknown>>();
  if (children.length > 0) {
    const result = await client.query(SIZES_SQL, [children.map((c) => c.oid)]);
    for (const raw of result.rows) {
      const row = record(raw);
      sizes.set(String(row.oid), row);
    }
  }
  const partitions = children.map((child): PartitionReportEntry => {
    const size = sizes.get(child.oid) ?? {};
    const reltuples = finite(size.reltuples);
    const rows = child.subpartitioned
      ? finite(size.leaf_rows)
      : reltuples !== undefined && reltuples >= 0
        ? reltuples
        : finite(size.live);
    return {
      schema: child.schema,
      name: child.name,
      bound: child.bound,
      isDefault: child.isDefault,
      detachPending: child.detachPending,
      subpartitioned: child.subpartitioned,
      range:
        child.range === undefined
          ? undefined
          : { from: toDate(child.range.from), to: toDate(child.range.to) },
      rows,
      bytes: finite(child.subpartitioned ? size.leaf_bytes : size.bytes) ?? 0,
    };
  });
  partitions.sort(compareEntries);
  return {
    schema,
    table,
    strategy: parent.strategy,
    key,
    partitions,
    totalRows: partitions.reduce((sum, p) => sum + (p.rows ?? 0), 0),
    totalBytes: partitions.reduce((sum, p) => sum + p.bytes, 0),
  };
}

function compareEntries(a: PartitionReportEntry, b: PartitionReportEntry): number {
  if (a.isDefault !== b.isDefault) return a.isDefault ? 1 : -1;
  if (a.range !== undefined && b.range !== undefined) {
    const from = (p: PartitionReportEntry) => p.range?.from?.getTime() ?? Number.NEGATIVE_INFINITY;
    const fa = from(a);
    const fb = from(b);
    if (fa !== fb) return fa < fb ? -1 : 1;
  }
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function toDate(ms: number): Date | null {
  return Number.isFinite(ms) ? new Date(ms) : null;
}

function finite(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}
