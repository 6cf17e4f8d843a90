/**
 * A small, allocation-free lexer for PostgreSQL statement text, written in JavaScript so that
 * looking at a 1 MB bulk INSERT costs a linear pass of the event loop (about a millisecond)
 * instead of a full parse (hundreds). It knows exactly where every literal, quoted identifier
 * and comment begins and ends, which is all its callers need: they keep every byte outside the
 * regions they prove harmless. It follows PostgreSQL's scanner (scan.l) with
 * standard_conforming_strings on, as libpg-query does: `'...'` and `N'...'`/`U&'...'` double
 * their quotes, `E'...'` also takes backslash escapes, `B'...'`/`X'...'` end at the first quote,
 * dollar quotes end at the same tag, and block comments nest.
 */

/** Kinds of token; strings of every form share one kind. */
export const Token = {
  End: 0,
  Space: 1,
  Comment: 2,
  /** Any quoted literal: '', E'', B'', X'', U&'', or a dollar-quoted string. */
  String: 3,
  /** An unquoted word: keyword or identifier. */
  Word: 4,
  QuotedIdent: 5,
  /** `$` followed by digits. */
  Param: 6,
  Number: 7,
  Semicolon: 8,
  /** Any other single character: operators, punctuation, brackets. */
  Other: 9,
  /** A literal, quoted identifier or comment that runs to the end of the text. */
  Unterminated: 10,
} as const;
export type TokenKind = (typeof Token)[keyof typeof Token];

const SPACE = 32;
const QUOTE = 39; // '
const DQUOTE = 34; // "
const DOLLAR = 36;
const DASH = 45;
const SLASH = 47;
const STAR = 42;
const BACKSLASH = 92;
const AMP = 38;
const DOT = 46;
const SEMI = 59;

/** PostgreSQL's `space`: blank, tab, newline, vertical tab, form feed, carriage return. */
export function isSpace(c: number): boolean {
  return c === SPACE || (c >= 9 && c <= 13);
}

/** `ident_start`: ASCII letters, underscore and every non-ASCII character. */
export function isIdentStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
}

/** `ident_cont`: ident_start, digits and `$`. */
export function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 48 && c <= 57) || c === DOLLAR;
}

export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** End (exclusive) of a quoted run that doubles its quote character; -1 when unterminated. */
function endOfDoubled(sql: string, from: number, quote: string): number {
  let at = from;
  for (;;) {
    const close = sql.indexOf(quote, at);
    if (close === -1) return -1;
    if (sql.charCodeAt(close + 1) !== quote.charCodeAt(0)) return close + 1;
    at = close + 2;
  }
}

/** End of an E'' string body starting after its opening quote: backslash escapes any char. */
function endOfEscaped(sql: string, from: number): number {
  const n = sql.length;
  for (let i = from; i < n; i++) {
    const c = sql.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) {
      if (sql.charCodeAt(i + 1) === QUOTE) i++;
      else return i + 1;
    }
  }
  return -1;
}

/** Length of a dollar-quote delimiter (`$$` or `$tag$`) at `at`, or 0 when there is none. */
export function dollarDelimiterLength(sql: string, at: number): number {
  let i = at + 1;
  const first = sql.charCodeAt(i);
  if (first === DOLLAR) return 2;
  if (!isIdentStart(first)) return 0;
  for (i++; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c === DOLLAR) return i - at + 1;
    if (!(isIdentStart(c) || isDigit(c))) return 0;
  }
  return 0;
}

/**
 * Walks a text token by token. `next()` returns the kind of the token at the current position
 * and sets `start`/`end`; `plainString` tells a `'...'` literal without prefix (the only string
 * form that can never be a lexical error). Positions are UTF-16 indexes into the text.
 */
export class Lexer {
  start = 0;
  end = 0;
  plainString = false;

  constructor(
    readonly sql: string,
    public pos = 0,
  ) {}

  next(): TokenKind {
    const sql = this.sql;
    const n = sql.length;
    const i = this.pos;
    this.start = i;
    this.plainString = false;
    if (i >= n) {
      this.end = n;
      return Token.End;
    }
    const c = sql.charCodeAt(i);
    const d = sql.charCodeAt(i + 1);
    let kind: TokenKind;
    let end: number;
    if (isSpace(c)) {
      end = i + 1;
      while (end < n && isSpace(sql.charCodeAt(end))) end++;
      kind = Token.Space;
    } else if (c === DASH && d === DASH) {
      end = i + 2;
      while (end < n) {
        const e = sql.charCodeAt(end);
        if (e === 10 || e === 13) break;
        end++;
      }
      kind = Token.Comment;
    } else if (c === SLASH && d === STAR) {
      end = endOfBlockComment(sql, i);
      kind = Token.Comment;
    } else if (c === QUOTE) {
      end = endOfDoubled(sql, i + 1, "'");
      this.plainString = true;
      kind = Token.String;
    } else if (c === DQUOTE) {
      end = endOfDoubled(sql, i + 1, '"');
      kind = Token.QuotedIdent;
    } else if (c === DOLLAR) {
      if (isDigit(d)) {
        end = i + 2;
        while (end < n && isDigit(sql.charCodeAt(end))) end++;
        kind = Token.Param;
      } else {
        const length = dollarDelimiterLength(sql, i);
        if (length === 0) {
          end = i + 1;
          kind = Token.Other;
        } else {
          const close = sql.indexOf(sql.slice(i, i + length), i + length);
          end = close === -1 ? -1 : close + length;
          kind = Token.String;
        }
      }
    } else if (isIdentStart(c)) {
      // E'', B'', X'' and U&'' / U&"" prefixes start the literal (N'' is the word N, then '').
      if (d === QUOTE && (c === 69 || c === 101)) {
        end = endOfEscaped(sql, i + 2);
        kind = Token.String;
      } else if (d === QUOTE && (c === 66 || c === 98 || c === 88 || c === 120)) {
        const close = sql.indexOf("'", i + 2);
        end = close === -1 ? -1 : close + 1;
        kind = Token.String;
      } else if ((c === 85 || c === 117) && d === AMP) {
        const q = sql.charCodeAt(i + 2);
        if (q === QUOTE) {
          end = endOfDoubled(sql, i + 3, "'");
          kind = Token.String;
        } else if (q === DQUOTE) {
          end = endOfDoubled(sql, i + 3, '"');
          kind = Token.QuotedIdent;
        } else {
          end = i + 1;
          kind = Token.Word;
        }
      } else {
        end = i + 1;
        while (end < n && isIdentPart(sql.charCodeAt(end))) end++;
        kind = Token.Word;
      }
    } else if (isDigit(c) || (c === DOT && isDigit(d))) {
      end = i + 1;
      while (end < n) {
        const e = sql.charCodeAt(end);
        if (isDigit(e) || e === DOT || e === 95 || (e >= 97 && e <= 122) || (e >= 65 && e <= 90)) {
          // An exponent's sign belongs to the number: 1e-5.
          const sign = sql.charCodeAt(end + 1);
          if ((e === 101 || e === 69) && (sign === 43 || sign === DASH)) {
            // Only when a digit follows: `1e--x` is `1e` and a comment.
            if (isDigit(sql.charCodeAt(end + 2))) end++;
          }
          end++;
        } else break;
      }
      kind = Token.Number;
    } else if (c === SEMI) {
      end = i + 1;
      kind = Token.Semicolon;
    } else {
      end = i + 1;
      kind = Token.Other;
    }
    if (end === -1) {
      this.end = n;
      this.pos = n;
      return Token.Unterminated;
    }
    this.end = end;
    this.pos = end;
    return kind;
  }
}

/** End of a (nesting) block comment starting at `at`, or -1 when it is not closed. */
function endOfBlockComment(sql: string, at: number): number {
  let depth = 1;
  let i = at + 2;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === STAR && sql.charCodeAt(i + 1) === SLASH) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      depth++;
      i += 2;
    } else i++;
  }
  return -1;
}

/**
 * The first word of a statement, lower-cased, after whitespace and comments; `undefined` when
 * the text starts with anything else (a parenthesis, a literal, a `;`) or holds no token.
 */
export function firstWord(sql: string): string | undefined {
  const lexer = new Lexer(sql);
  for (;;) {
    const kind = lexer.next();
    if (kind === Token.Space || kind === Token.Comment) continue;
    if (kind !== Token.Word) return undefined;
    // Word tokens are ASCII-led; a word of 16+ characters is no keyword we look for.
    return lexer.end - lexer.start > 16 ? '' : sql.slice(lexer.start, lexer.end).toLowerCase();
  }
}

/**
 * True when the text holds more than one statement: a `;` outside literals and comments that is
 * followed by another token. A trailing `;` (and comments after it) does not count.
 */
export function hasSeveralStatements(sql: string): boolean {
  if (!sql.includes(';')) return false;
  const lexer = new Lexer(sql);
  let separated = false;
  for (;;) {
    const kind = lexer.next();
    switch (kind) {
      case Token.End:
      case Token.Unterminated:
        return false;
      case Token.Space:
      case Token.Comment:
        break;
      case Token.Semicolon:
        separated = true;
        break;
      default:
        if (separated) return true;
    }
  }
}

/**
 * Splits a text at its top-level semicolons into the statements' texts (semicolons dropped,
 * empty statements skipped). An unterminated literal or comment ends the last piece.
 */
export function splitStatements(sql: string): string[] {
  const pieces: string[] = [];
  const lexer = new Lexer(sql);
  let from = 0;
  let content = false;
  for (;;) {
    const kind = lexer.next();
    if (kind === Token.End || kind === Token.Unterminated || kind === Token.Semicolon) {
      if (content)
        pieces.push(sql.slice(from, kind === Token.Semicolon ? lexer.start : sql.length));
      if (kind !== Token.Semicolon) return pieces;
      from = lexer.end;
      content = false;
    } else if (kind !== Token.Space && kind !== Token.Comment) content = true;
  }
}
