import { createHash } from 'node:crypto';
import { PgPulseError } from '../errors/index.js';
import {
  advisoryLockKey,
  MAX_IDENTIFIER_BYTES,
  qualified,
  quoteIdent,
  quoteLiteral,
  truncateBytes,
} from '../sql/index.js';

/**
 * Building blocks of the index DDL pgpulse generates (invariant 7): identifiers are always
 * quoted, literals always escaped, and names come from the catalog or are computed here.
 */

export { MAX_IDENTIFIER_BYTES, qualified, quoteLiteral, truncateBytes };

export type SortDirection = 'asc' | 'desc';

/** A short stable digest of any JSON-able value, for names that must not collide. */
export function shortHash(value: unknown, length = 8): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, length);
}

/** The advisory-lock key of one table's index maintenance (see advisoryLockKey). */
export function indexLockKey(schema: string, table: string): bigint {
  return advisoryLockKey('index', schema, table);
}

/** A partial-index predicate: `column = 'value'`, the only shape pgpulse generates. */
export interface PartialPredicate {
  readonly column: string;
  /** The constant's text; sent as a quoted literal the column's type parses. */
  readonly value: string;
}

/** The predicate as SQL: `"column" = 'value'` (identifier quoted, literal escaped). */
export function predicateSql(predicate: PartialPredicate): string {
  return `${quoteIdent(predicate.column)} = ${quoteLiteral(predicate.value)}`;
}

export interface IndexShape {
  readonly schema: string;
  readonly table: string;
  readonly columns: readonly string[];
  /** Parallel to `columns`; ascending when absent. */
  readonly order?: readonly SortDirection[] | undefined;
  readonly predicate?: PartialPredicate | undefined;
  /** INCLUDE columns: carried in the leaves so the statement can use an index-only scan. */
  readonly include?: readonly string[] | undefined;
}

/** The column list of an index definition: `"a", "b" DESC`. */
export function columnListSql(shape: IndexShape): string {
  return shape.columns
    .map((c, i) => `${quoteIdent(c)}${shape.order?.[i] === 'desc' ? ' DESC' : ''}`)
    .join(', ');
}

/**
 * Index names for a shape, in order of preference: PostgreSQL's own style
 * (`orders_customer_id_idx`, `..._desc` for a descending column), and a variant with a digest
 * of the full definition, used when the first is taken or would be truncated. A partial index
 * always carries the digest, so two predicates on one column never share a name.
 */
export function indexNames(shape: IndexShape): { readonly plain: string; readonly hashed: string } {
  const parts = shape.columns.map((c, i) => (shape.order?.[i] === 'desc' ? `${c}_desc` : c));
  const digest = shortHash([
    shape.schema,
    shape.table,
    shape.columns,
    shape.order ?? [],
    shape.predicate ?? null,
    ...(shape.include === undefined || shape.include.length === 0 ? [] : [shape.include]),
  ]);
  const base = `${shape.table}_${parts.join('_')}`;
  const hashedTail = `_${digest}_idx`;
  const hashed = `${truncateBytes(base, MAX_IDENTIFIER_BYTES - Buffer.byteLength(hashedTail))}${hashedTail}`;
  const plain = `${base}_idx`;
  const covering = shape.include !== undefined && shape.include.length > 0;
  if (
    shape.predicate !== undefined ||
    covering ||
    Buffer.byteLength(plain) > MAX_IDENTIFIER_BYTES
  ) {
    return { plain: hashed, hashed };
  }
  return { plain, hashed };
}

/**
 * `CREATE INDEX CONCURRENTLY IF NOT EXISTS "name" ON "schema"."table" USING btree (...)`, or
 * for a partitioned table the `ON ONLY` form (partitions get their own concurrent builds and
 * are attached, see index-manager.ts).
 */
export function createIndexSql(
  shape: IndexShape,
  name: string,
  mode: 'concurrently' | 'only' = 'concurrently',
): string {
  const where = shape.predicate === undefined ? '' : ` WHERE (${predicateSql(shape.predicate)})`;
  const target = qualified(shape.schema, shape.table);
  const head =
    mode === 'concurrently'
      ? `CREATE INDEX CONCURRENTLY IF NOT EXISTS ${quoteIdent(name)} ON ${target}`
      : `CREATE INDEX IF NOT EXISTS ${quoteIdent(name)} ON ONLY ${target}`;
  return `${head} USING btree (${columnListSql(shape)})${includeSql(shape)}${where}`;
}

/** ` INCLUDE ("a", "b")`, or nothing. */
export function includeSql(shape: IndexShape): string {
  return shape.include === undefined || shape.include.length === 0
    ? ''
    : ` INCLUDE (${shape.include.map(quoteIdent).join(', ')})`;
}

export function dropIndexSql(schema: string, name: string): string {
  return `DROP INDEX CONCURRENTLY IF EXISTS ${qualified(schema, name)}`;
}

export function reindexSql(schema: string, name: string): string {
  return `REINDEX INDEX CONCURRENTLY ${qualified(schema, name)}`;
}

// ---------------------------------------------------------------------------------------------
// Reading rows: every value from a driver is checked before use.

export type Row = Readonly<Record<string, unknown>>;

export function asRow(value: unknown): Row {
  return typeof value === 'object' && value !== null ? (value as Row) : {};
}

export function num(value: unknown): number | undefined {
  const n = typeof value === 'string' || typeof value === 'bigint' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function bool(value: unknown): boolean {
  return value === true || value === 't' || value === 'true';
}

/** A json/jsonb column: parsed by pg already, or JSON text from a driver that does not. */
export function json(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

export function timestamp(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  return typeof value === 'string' ? value : undefined;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Index DDL the server refused or that was left unusable. Never quotes a data value. */
export class IndexMaintenanceError extends PgPulseError {
  /** The server's SQLSTATE, when the server refused the statement. */
  readonly sqlState: string | undefined;

  constructor(message: string, sqlState?: string, options?: { cause?: unknown }) {
    super('PGPULSE_INDEX_DDL', message, {
      ...options,
      // Lock and statement timeouts, deadlocks, serialization: worth another go later.
      retriable: sqlState === '55P03' || sqlState === '57014' || sqlState?.startsWith('40'),
    });
    this.sqlState = sqlState;
  }
}

export function sqlStateOf(error: unknown): string | undefined {
  return typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'string'
    ? error.code
    : undefined;
}

/**
 * Wraps a server error from index DDL. Data and integrity errors (SQLSTATE classes 22, 23)
 * quote row values ("Key (email)=(...) is duplicated"), so their text is withheld and the
 * original error not attached (invariant 6); other messages name objects and are kept.
 */
export function ddlFailure(what: string, error: unknown): IndexMaintenanceError {
  if (error instanceof IndexMaintenanceError) return error;
  const code = sqlStateOf(error);
  if (code === undefined || code.startsWith('22') || code.startsWith('23')) {
    const why = code === undefined ? 'the server or connection failed' : `SQLSTATE ${code}`;
    return new IndexMaintenanceError(
      `${what} failed: ${why} (message withheld: it may quote a value).`,
      code,
    );
  }
  const text = error instanceof Error ? error.message : String(error);
  return new IndexMaintenanceError(`${what} failed: ${text} (SQLSTATE ${code}).`, code, {
    cause: error,
  });
}
