import { scanSync } from 'libpg-query';

export type RouteHint = 'primary' | 'replica';

const HINT_MARKER = 'pgpulse:';
const HINT_IN_COMMENT = /pgpulse:(primary|replica)\b/g;

/** Cheap gate so the scanner only runs on the rare text that mentions a hint at all. */
export function mayContainHint(sql: string): boolean {
  return sql.includes(HINT_MARKER);
}

/**
 * Finds a routing hint in a comment (`/* pgpulse:primary *\/` or `-- pgpulse:replica`).
 * The lexer decides what is a comment, so the same words inside a string literal or a quoted
 * identifier are not a hint. When both appear, primary wins: it is the safe direction.
 */
export function findHint(sql: string): RouteHint | undefined {
  let tokens: readonly { readonly text: string }[];
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    // Only reachable if the lexer rejects text the parser accepted; honour only the safe hint.
    return /pgpulse:primary\b/.test(sql) ? 'primary' : undefined;
  }
  let found: RouteHint | undefined;
  for (const token of tokens) {
    const text = token.text;
    if (!(text.startsWith('/*') || text.startsWith('--')) || !text.includes(HINT_MARKER)) continue;
    for (const match of text.matchAll(HINT_IN_COMMENT)) {
      if (match[1] === 'primary') return 'primary';
      found = 'replica';
    }
  }
  return found;
}
