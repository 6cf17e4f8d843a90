import { Lexer, Token } from './lexer.js';

export interface MaskOptions {
  /** `$1, $2, ...` instead of `?` for each literal. Default false. */
  readonly numbered?: boolean;
  /** Stops (ending with `…`) once the output is this long. Default unbounded. */
  readonly maxLength?: number;
}

/**
 * The text with every literal (strings of every form, numbers) replaced, comments dropped and
 * whitespace runs folded to one space. A literal or comment left open runs to the end of the
 * text, so it is cut and ` …` marks the cut: nothing of it is returned. Linear, no parser:
 * the fallback for text too large (or too broken) for libpg-query.
 */
export function maskLiterals(sql: string, options: MaskOptions = {}): string {
  const numbered = options.numbered === true;
  const max = options.maxLength ?? Number.POSITIVE_INFINITY;
  const lexer = new Lexer(sql);
  let out = '';
  let n = 0;
  let space = false;
  for (;;) {
    const kind = lexer.next();
    if (kind === Token.End) break;
    if (kind === Token.Unterminated) {
      out = `${out.trimEnd()} …`;
      break;
    }
    if (kind === Token.Space || kind === Token.Comment) {
      space = out.length > 0;
      continue;
    }
    if (space) out += ' ';
    space = false;
    if (kind === Token.String || kind === Token.Number) out += numbered ? `$${++n}` : '?';
    else out += sql.slice(lexer.start, lexer.end);
    if (out.length >= max) {
      out = `${out.slice(0, max)}…`;
      break;
    }
  }
  return out;
}
