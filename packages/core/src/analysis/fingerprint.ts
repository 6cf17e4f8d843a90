import { createHash } from 'node:crypto';
import { fingerprintSync, normalizeSync, type ScanToken, scanSync } from 'libpg-query';
import { isParserLoaded, maskLiterals, shapeOf } from '../sql/index.js';

export type FingerprintSource = 'libpg-query' | 'hash';

export interface QueryFingerprint {
  /** 16 hex digits; equal for texts that differ only in literals, whitespace and comments. */
  readonly fingerprint: string;
  /** The text with every literal replaced by `$n` and comments removed. */
  readonly normalized: string;
  /**
   * 'hash' when libpg-query could not parse the text (or was not loaded yet): the fingerprint
   * is then a hash of the text with its literals masked, and the text is masked by the
   * scanner alone, or replaced by a placeholder when even that fails.
   */
  readonly source: FingerprintSource;
}

const FINGERPRINT = /^[0-9a-f]{16}$/;

export const UNREADABLE_STATEMENT = '<statement not shown: it could not be read safely>';

/** Where elements of a long constant list were cut, as pg_stat_statements (18) shows it. */
const LIST_MARKER = ' /*, ... */';
const LIST_MARKER_COMMENT = LIST_MARKER.trim();
/** Shapes longer than this are fingerprinted from the lexer's masked text, not parsed. */
const MAX_PARSED_LENGTH = 16_384;
/** Results for texts that were cut to a shape, by shape: every IN size shares one entry. */
const byShape = new Map<string, QueryFingerprint>();
const BY_SHAPE_LIMIT = 1000;

/** Literal tokens the scanner may label UNKNOWN (B'', X'', U&'') are recognised by their text. */
const LITERAL_TOKENS: ReadonlySet<string> = new Set([
  'SCONST',
  'USCONST',
  'ICONST',
  'FCONST',
  'BCONST',
  'XCONST',
]);
const LITERAL_TEXT = /^(?:[bBxXnNeE]|[uU]&)?'|^\$[^0-9]/;
const COMMENT_TOKENS: ReadonlySet<string> = new Set(['SQL_COMMENT', 'C_COMMENT']);

function isLiteral(token: ScanToken): boolean {
  return LITERAL_TOKENS.has(token.tokenName) || LITERAL_TEXT.test(token.text);
}

/**
 * Rebuilds `sql` from its scanner tokens, replacing literals with `?` (or `$n` when
 * `numbered`) and dropping comments. Token offsets are UTF-8 byte offsets, hence the Buffer.
 * Throws when the scanner does; callers fall back to a placeholder.
 */
export function maskSqlText(sql: string, numbered = false): string {
  const tokens = scanSync(sql).tokens;
  const bytes = Buffer.from(sql, 'utf8');
  const scannedTo = tokens[tokens.length - 1]?.end ?? 0;
  const parts: string[] = [];
  let copied = 0;
  let n = 0;
  for (const token of tokens) {
    const literal = isLiteral(token);
    if (!literal && !COMMENT_TOKENS.has(token.tokenName)) continue;
    parts.push(bytes.subarray(copied, token.start).toString('utf8'));
    parts.push(literal ? (numbered ? `$${++n}` : '?') : ' ');
    copied = token.end;
  }
  parts.push(bytes.subarray(copied, Math.max(copied, scannedTo)).toString('utf8'));
  // Text after the last token the scanner returned is text it could not read (e.g. an
  // unterminated quote): it may be a literal, so it is cut.
  if (/\S/.test(bytes.subarray(Math.max(copied, scannedTo)).toString('utf8'))) parts.push(' …');
  return parts.join('');
}

/** Drops comments (libpg-query's normalize keeps them, and they may hold anything). */
function withoutComments(sql: string): string {
  if (!sql.includes('--') && !sql.includes('/*')) return sql;
  try {
    const bytes = Buffer.from(sql, 'utf8');
    const parts: string[] = [];
    let copied = 0;
    for (const token of scanSync(sql).tokens) {
      if (!COMMENT_TOKENS.has(token.tokenName) || token.text === LIST_MARKER_COMMENT) continue;
      parts.push(bytes.subarray(copied, token.start).toString('utf8'), ' ');
      copied = token.end;
    }
    parts.push(bytes.subarray(copied).toString('utf8'));
    return parts
      .join('')
      .replace(/[ \t]+$/gm, '')
      .trim();
  } catch {
    return sql;
  }
}

function hashFingerprint(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/**
 * Fingerprints and normalizes one statement text. Never throws; never returns a literal of
 * `sql` (invariant 6): parseable text is normalized by libpg-query, anything else is masked
 * token by token or withheld.
 *
 * The work is bounded by the statement's shape, not its length: long constant lists (IN,
 * VALUES, ARRAY) are cut to their first element first (shown as `$1 /*, ... *\/`; the
 * fingerprint is libpg-query's, which ignores list lengths anyway), and a shape still longer
 * than 16 KB is masked by a linear lexer instead of parsed. Cut texts are cached by shape.
 */
export function fingerprintQuery(sql: string, maxLength = 4096): QueryFingerprint {
  if (typeof sql !== 'string') {
    return { fingerprint: hashFingerprint(''), normalized: UNREADABLE_STATEMENT, source: 'hash' };
  }
  // The parser reads a C string: a NUL would hide the rest of the text from it.
  if (!isParserLoaded() || sql.includes('\0')) return fingerprintText(sql, maxLength);
  const shape = shapeOf(sql, { marker: LIST_MARKER }).text;
  if (shape === sql) return fingerprintText(sql, maxLength);
  const key = `${maxLength}\0${shape}`;
  const hit = byShape.get(key);
  if (hit !== undefined) return hit;
  const id = fingerprintText(shape, maxLength);
  if (shape.length <= MAX_PARSED_LENGTH) {
    if (byShape.size >= BY_SHAPE_LIMIT) byShape.delete(byShape.keys().next().value as string);
    byShape.set(key, id);
  }
  return id;
}

function fingerprintText(sql: string, maxLength: number): QueryFingerprint {
  if (sql.length > MAX_PARSED_LENGTH && !sql.includes('\0')) {
    const masked = maskLiterals(sql);
    return {
      fingerprint: hashFingerprint(masked),
      normalized: truncate(masked, maxLength),
      source: 'hash',
    };
  }
  if (isParserLoaded() && !sql.includes('\0')) {
    try {
      const fingerprint = fingerprintSync(sql);
      // libpg-query 18.1.5 returns the scanner's error message, quoting the offending literal,
      // instead of throwing for an unterminated quote, comment or dollar string: only a real
      // fingerprint proves the text parsed, and with it that normalize's output is the text.
      if (FINGERPRINT.test(fingerprint)) {
        const normalized = withoutComments(normalizeSync(sql));
        return { fingerprint, normalized: truncate(normalized, maxLength), source: 'libpg-query' };
      }
    } catch {
      // Not parseable: masked below.
    }
  }
  let masked: string | undefined;
  if (isParserLoaded() && !sql.includes('\0')) {
    try {
      masked = maskSqlText(sql).replace(/\s+/g, ' ').trim();
    } catch {
      masked = undefined;
    }
  }
  return {
    fingerprint: hashFingerprint(masked ?? sql),
    normalized: masked === undefined ? UNREADABLE_STATEMENT : truncate(masked, maxLength),
    source: 'hash',
  };
}
