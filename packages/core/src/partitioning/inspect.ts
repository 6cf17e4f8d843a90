import { PartitioningError } from '../errors/index.js';
import type { QueryClient } from '../sql/index.js';
import { qualified } from './sql.js';
import type { PartitionType } from './strategy.js';
import type { TimeKeyType } from './time.js';

/**
 * Catalog reads for partition management. Names travel as bound parameters and are compared
 * with `pg_namespace.nspname` / `pg_class.relname` exactly (no search_path, no case folding);
 * what the DDL later quotes is what the catalog returned.
 */

export interface ParentInfo {
  readonly oid: string;
  readonly schema: string;
  readonly table: string;
  /** pg_class.relkind: 'p' for a partitioned table. */
  readonly kind: string;
  /** pg_class.relpersistence: 'p' permanent, 'u' unlogged, 't' temporary. */
  readonly persistence: string;
  /** The parent's tablespace (new partitions go there too), when not the database default. */
  readonly tablespace: string | undefined;
  /** Undefined when the relation is not partitioned. */
  readonly strategy: PartitionType | undefined;
  readonly keyCount: number;
  /** The first key column, or undefined for an expression key. */
  readonly keyColumn: string | undefined;
  /** The first key column's type as SQL spells it, e.g. `timestamp with time zone`. */
  readonly keyType: string | undefined;
  /** Set when the key column is one a time-range strategy can manage. */
  readonly timeKey: TimeKeyType | undefined;
  /** The DEFAULT partition's name, when there is one. */
  readonly defaultPartition: string | undefined;
}

export interface ChildInfo {
  readonly oid: string;
  readonly schema: string;
  readonly name: string;
  /** `pg_get_expr(relpartbound)`: `FOR VALUES FROM (...) TO (...)`, `DEFAULT`... */
  readonly bound: string;
  readonly isDefault: boolean;
  /** Left half-way by an interrupted `DETACH ... CONCURRENTLY`; needs `DETACH ... FINALIZE`. */
  readonly detachPending: boolean;
  /** relkind 'p': the partition is itself partitioned. */
  readonly subpartitioned: boolean;
  /** Time-range bounds in epoch ms; -Infinity / Infinity for MINVALUE / MAXVALUE. */
  readonly range: { readonly from: number; readonly to: number } | undefined;
}

const STRATEGIES: Readonly<Record<string, PartitionType>> = { r: 'range', l: 'list', h: 'hash' };

const PARENT_SQL = `
SELECT c.oid::text AS oid, c.relkind::text AS kind, c.relpersistence::text AS persistence,
       ts.spcname AS tablespace, pt.partstrat::text AS strategy, pt.partnatts::int AS key_count,
       ka.attname AS key_column, pg_catalog.format_type(ka.atttypid, ka.atttypmod) AS key_type,
       CASE ka.atttypid WHEN 'pg_catalog.timestamptz'::pg_catalog.regtype THEN 'timestamptz'
                        WHEN 'pg_catalog.timestamp'::pg_catalog.regtype THEN 'timestamp'
                        WHEN 'pg_catalog.date'::pg_catalog.regtype THEN 'date' END AS time_key,
       d.relname AS default_partition
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid = c.reltablespace
  LEFT JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = c.oid
  LEFT JOIN pg_catalog.pg_attribute ka ON ka.attrelid = c.oid AND ka.attnum = pt.partattrs[0]
  LEFT JOIN pg_catalog.pg_class d ON d.oid = pt.partdefid
 WHERE n.nspname = $1 AND c.relname = $2`;

/** The relation `schema.table`, or undefined when there is none. */
export async function readParent(
  client: QueryClient,
  schema: string,
  table: string,
): Promise<ParentInfo | undefined> {
  const result = await client.query(PARENT_SQL, [schema, table]);
  const r = result.rows[0];
  if (r === undefined) return undefined;
  const row = record(r);
  const strategy = typeof row.strategy === 'string' ? STRATEGIES[row.strategy] : undefined;
  const timeKey = row.time_key;
  return {
    oid: String(row.oid),
    schema,
    table,
    kind: String(row.kind),
    persistence: String(row.persistence),
    tablespace: optionalString(row.tablespace),
    strategy,
    keyCount: typeof row.key_count === 'number' ? row.key_count : 0,
    keyColumn: optionalString(row.key_column),
    keyType: optionalString(row.key_type),
    timeKey:
      timeKey === 'timestamptz' || timeKey === 'timestamp' || timeKey === 'date'
        ? timeKey
        : undefined,
    defaultPartition: optionalString(row.default_partition),
  };
}

/** The parent, or a PartitioningError saying it is missing or not partitioned. */
export async function requirePartitionedParent(
  client: QueryClient,
  schema: string,
  table: string,
  hint: string,
): Promise<ParentInfo & { readonly strategy: PartitionType }> {
  const parent = await readParent(client, schema, table);
  const name = qualified(schema, table);
  if (parent === undefined) {
    throw new PartitioningError(
      'table-not-found',
      name,
      `Table ${name} does not exist. Create it as a partitioned table first (${hint}); ` +
        'pgpulse creates and retires partitions, never the parent.',
    );
  }
  if (parent.strategy === undefined) {
    throw new PartitioningError(
      'not-partitioned',
      name,
      `${name} is not a partitioned table (it is ${describeKind(parent.kind)}). pgpulse manages ` +
        `declarative partitioning: create the table with ${hint}, or convert this one online ` +
        'with setupPartitioning(strategy, { migrate: true }) (CLI: pgpulse partitions --migrate).',
    );
  }
  return { ...parent, strategy: parent.strategy };
}

function describeKind(kind: string): string {
  switch (kind) {
    case 'r':
      return 'a regular table';
    case 'v':
      return 'a view';
    case 'm':
      return 'a materialized view';
    case 'f':
      return 'a foreign table';
    default:
      return `a relation of kind '${kind}'`;
  }
}

/*
 * Range bounds are read back as epochs by PostgreSQL itself: pg_get_expr prints a bound in the
 * session's TimeZone/DateStyle and casting that text back in the same session reads it the same
 * way, so no date text is parsed here. `extract(epoch ...)` of a timestamp or date is its UTC
 * wall-clock reading, the same convention as the bounds pgpulse writes.
 */
const CHILDREN_SQL = `
WITH kids AS (
  SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
         pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound,
         c.oid = pt.partdefid AS is_default, i.inhdetachpending AS detach_pending
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = i.inhparent
   WHERE i.inhparent = $1::oid
), parsed AS (
  SELECT k.*, pg_catalog.regexp_match(k.bound, '^FOR VALUES FROM \\((.*)\\) TO \\((.*)\\)$') AS m
    FROM kids k
)
SELECT p.oid::text AS oid, p.schema, p.name, p.kind, p.bound, p.is_default, p.detach_pending,
       p.m IS NOT NULL AND $2::text IS NOT NULL AS is_range,
       CASE WHEN p.m[1] = 'MINVALUE' THEN '-Infinity'::float8 ELSE
         (CASE $2::text
            WHEN 'timestamptz' THEN extract(epoch FROM pg_catalog.btrim(p.m[1], '''')::timestamptz)
            WHEN 'timestamp' THEN extract(epoch FROM pg_catalog.btrim(p.m[1], '''')::timestamp)
            WHEN 'date' THEN extract(epoch FROM pg_catalog.btrim(p.m[1], '''')::date)
          END)::float8 END AS from_epoch,
       CASE WHEN p.m[2] = 'MAXVALUE' THEN 'Infinity'::float8 ELSE
         (CASE $2::text
            WHEN 'timestamptz' THEN extract(epoch FROM pg_catalog.btrim(p.m[2], '''')::timestamptz)
            WHEN 'timestamp' THEN extract(epoch FROM pg_catalog.btrim(p.m[2], '''')::timestamp)
            WHEN 'date' THEN extract(epoch FROM pg_catalog.btrim(p.m[2], '''')::date)
          END)::float8 END AS to_epoch
  FROM parsed p
 ORDER BY p.name`;

/** The partitions of `parent`; `timeKey` set reads range bounds as epochs. */
export async function readChildren(
  client: QueryClient,
  parent: Pick<ParentInfo, 'oid' | 'timeKey'>,
): Promise<ChildInfo[]> {
  const result = await client.query(CHILDREN_SQL, [parent.oid, parent.timeKey ?? null]);
  return result.rows.map((raw) => {
    const row = record(raw);
    const from = seconds(row.from_epoch);
    const to = seconds(row.to_epoch);
    return {
      oid: String(row.oid),
      schema: String(row.schema),
      name: String(row.name),
      bound: String(row.bound),
      isDefault: row.is_default === true,
      detachPending: row.detach_pending === true,
      subpartitioned: row.kind === 'p',
      range:
        row.is_range === true && from !== undefined && to !== undefined
          ? { from: from * 1000, to: to * 1000 }
          : undefined,
    };
  });
}

/** Whether the partition with this oid is still attached, and whether a detach is pending. */
export async function readAttachment(
  client: QueryClient,
  childOid: string,
): Promise<'attached' | 'pending' | 'detached'> {
  const result = await client.query(
    'SELECT inhdetachpending AS pending FROM pg_catalog.pg_inherits WHERE inhrelid = $1::oid',
    [childOid],
  );
  const row = result.rows[0];
  if (row === undefined) return 'detached';
  return record(row).pending === true ? 'pending' : 'attached';
}

/**
 * The values of a list partition, from `FOR VALUES IN ('a', 'b''c', 1, NULL)`; NULL is null.
 * Undefined when the text is not a list bound.
 */
export function parseListBound(bound: string): (string | null)[] | undefined {
  const match = /^FOR VALUES IN \((.*)\)$/s.exec(bound);
  const body = match?.[1];
  if (body === undefined) return undefined;
  const values: (string | null)[] = [];
  let i = 0;
  while (i < body.length) {
    while (body[i] === ' ' || body[i] === ',') i++;
    if (i >= body.length) break;
    const escaped = body[i] === 'E' && body[i + 1] === "'";
    if (escaped || body[i] === "'") {
      i += escaped ? 2 : 1;
      let value = '';
      for (;;) {
        const ch = body[i];
        if (ch === undefined) return undefined;
        if (ch === "'") {
          if (body[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (escaped && ch === '\\' && body[i + 1] !== undefined) {
          value += body[i + 1];
          i += 2;
          continue;
        }
        value += ch;
        i++;
      }
      values.push(value);
    } else {
      let token = '';
      while (i < body.length && body[i] !== ',') token += body[i++];
      token = token.trim();
      values.push(token === 'NULL' ? null : token);
    }
  }
  return values;
}

/** `{ modulus, remainder }` of `FOR VALUES WITH (modulus 4, remainder 1)`. */
export function parseHashBound(bound: string): { modulus: number; remainder: number } | undefined {
  const match = /^FOR VALUES WITH \(modulus (\d+), remainder (\d+)\)$/i.exec(bound);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  return { modulus: Number(match[1]), remainder: Number(match[2]) };
}

export function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function seconds(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && !Number.isNaN(n) ? n : undefined;
}
