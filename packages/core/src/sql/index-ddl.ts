import { createHash } from 'node:crypto';
import {
  advisoryLockKey,
  MAX_IDENTIFIER_BYTES,
  qualified,
  quoteIdent,
  quoteLiteral,
  truncateBytes,
} from './identifiers.js';

/**
 * Index DDL as pgpulse generates it (invariant 7): identifiers always quoted, literals always
 * escaped, names computed here. Used by the index advisor and by analyzeQuery's suggestions.
 */

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
 * are attached, see advisors/index-build.ts).
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
