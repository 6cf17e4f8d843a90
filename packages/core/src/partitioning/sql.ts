import { createHash } from 'node:crypto';
import { quoteIdent } from '../analysis/catalog.js';

/**
 * Building blocks of the DDL pgpulse generates (invariant 7): identifiers are always quoted,
 * literals always escaped, and the names come from the catalog or from suffixes computed here.
 */

/** PostgreSQL truncates longer identifiers silently (NAMEDATALEN - 1). */
export const MAX_IDENTIFIER_BYTES = 63;

/** `"schema"."name"`. */
export function qualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * A string literal that means `value` whatever `standard_conforming_strings` says, as the
 * server's own quote_literal() builds it: quotes doubled, and backslashes doubled under E''.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new RangeError('a SQL literal cannot contain a NUL character');
  const quoted = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/**
 * `<table>_<suffix>`, with the table part shortened (never the suffix, never mid-character) so
 * the whole fits in 63 bytes: PostgreSQL would otherwise truncate the suffix away and two
 * partitions would collide on one name.
 */
export function partitionName(table: string, suffix: string): string {
  const tail = `_${suffix}`;
  const budget = MAX_IDENTIFIER_BYTES - Buffer.byteLength(tail);
  let head = '';
  let used = 0;
  for (const ch of table) {
    const size = Buffer.byteLength(ch);
    if (used + size > budget) break;
    head += ch;
    used += size;
  }
  return `${head}${tail}`;
}

/**
 * The advisory-lock key of one partitioned table: the first 64 bits of
 * md5('pgpulse:partition:' + JSON [schema, table]), as a signed bigint. Every pgpulse instance
 * derives the same key, so `pg_try_advisory_lock` lets exactly one of them maintain the table.
 */
export function partitionLockKey(schema: string, table: string): bigint {
  const digest = createHash('md5')
    .update(`pgpulse:partition:${JSON.stringify([schema, table])}`)
    .digest();
  return digest.readBigInt64BE(0);
}
