import {
  advisoryLockKey,
  MAX_IDENTIFIER_BYTES,
  qualified,
  quoteLiteral,
  truncateBytes,
} from '../sql/index.js';

/**
 * Building blocks of the DDL pgpulse generates (invariant 7): identifiers are always quoted,
 * literals always escaped, and the names come from the catalog or from suffixes computed here.
 */

export { MAX_IDENTIFIER_BYTES, qualified, quoteLiteral };

/**
 * `<table>_<suffix>`, with the table part shortened (never the suffix, never mid-character) so
 * the whole fits in 63 bytes: PostgreSQL would otherwise truncate the suffix away and two
 * partitions would collide on one name.
 */
export function partitionName(table: string, suffix: string): string {
  const tail = `_${suffix}`;
  return `${truncateBytes(table, MAX_IDENTIFIER_BYTES - Buffer.byteLength(tail))}${tail}`;
}

/** The advisory-lock key of one partitioned table's maintenance (see advisoryLockKey). */
export function partitionLockKey(schema: string, table: string): bigint {
  return advisoryLockKey('partition', schema, table);
}
