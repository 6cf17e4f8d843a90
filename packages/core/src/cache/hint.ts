import { scanSync } from 'libpg-query';

const MARKER = 'pgpulse:cache';
/** `pgpulse:cache`, optionally `ttl=30s` / `ttl=500ms` / `ttl=2m` / `ttl=1500` (ms). */
const HINT = /pgpulse:cache(?:\s+ttl=(\d+(?:\.\d+)?)(ms|s|m)?)?(?![\w-])/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000 };

export interface CacheHint {
  /** Undefined: the configured default TTL. */
  readonly ttlMs: number | undefined;
}

/**
 * Finds `/* pgpulse:cache ttl=30s *\/` (or `-- pgpulse:cache`) in a comment. The lexer decides
 * what a comment is, so the words inside a string literal are not a hint.
 */
export function findCacheHint(sql: string): CacheHint | undefined {
  if (!sql.includes(MARKER)) return undefined;
  let tokens: readonly { readonly text: string }[];
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    return undefined; // not caching is always safe
  }
  for (const token of tokens) {
    const text = token.text;
    if (!(text.startsWith('/*') || text.startsWith('--')) || !text.includes(MARKER)) continue;
    const match = HINT.exec(text);
    if (!match) continue;
    if (match[1] === undefined) return { ttlMs: undefined };
    const ttlMs = Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1);
    return { ttlMs: ttlMs > 0 ? ttlMs : undefined };
  }
  return undefined;
}
