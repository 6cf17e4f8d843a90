import { createHash } from 'node:crypto';

/**
 * Building blocks of every statement pgpulse generates (invariant 7): identifiers always
 * quoted, literals always escaped, and names shortened before PostgreSQL would silently do it.
 */

/** PostgreSQL silently truncates longer identifiers (NAMEDATALEN - 1). */
export const MAX_IDENTIFIER_BYTES = 63;

/** Always quotes, so a generated statement never depends on the identifier's spelling. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * `"schema"."name"`, or `"name"` when the schema is unknown (search_path resolves it). The one
 * way pgpulse writes a qualified name: schema first, as SQL does.
 */
export function qualified(schema: string | undefined, name: string): string {
  return schema === undefined ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/**
 * A string literal that means `value` whatever `standard_conforming_strings` says, built as
 * the server's quote_literal() builds it: quotes doubled, backslashes doubled under E''.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new RangeError('a SQL literal cannot contain a NUL character');
  const quoted = value.replaceAll("'", "''");
  return value.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/** The longest prefix of `text` that fits in `bytes` UTF-8 bytes, never cut mid-character. */
export function truncateBytes(text: string, bytes: number): string {
  let out = '';
  let used = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch);
    if (used + size > bytes) break;
    out += ch;
    used += size;
  }
  return out;
}

/**
 * The advisory-lock key of one kind of maintenance on one table: the first 64 bits of
 * md5('pgpulse:<kind>:' + JSON [schema, table]) as a signed bigint. Every pgpulse instance
 * derives the same key, so `pg_try_advisory_lock` lets exactly one of them do the work. The
 * JSON pair keeps ("ab", "c") and ("a", "bc") apart.
 */
export function advisoryLockKey(
  kind: 'index' | 'partition',
  schema: string,
  table: string,
): bigint {
  return createHash('md5')
    .update(`pgpulse:${kind}:${JSON.stringify([schema, table])}`)
    .digest()
    .readBigInt64BE(0);
}
