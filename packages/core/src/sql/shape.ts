import { isDigit, isIdentPart, isIdentStart, isSpace, Lexer, Token } from './lexer.js';

/**
 * The shape of a statement: the same text with every long list of plain constants cut to its
 * first element, so that `IN ($1, ..., $40000)`, a 30,000-row `VALUES` and `ARRAY[...]` of any
 * length share one shape. Used as a cache key and a bounded input for the parser.
 *
 * What is removed is provably inert: only list elements that are a single parameter, number,
 * `'...'` string, NULL, TRUE or FALSE (optionally signed, optionally cast to the same plain type
 * as the first element), separated by commas and whitespace, inside `IN (...)`, `VALUES (...),
 * (...)` or `ARRAY[...]`. A list with anything else in it (a function call, a subquery, a
 * comment, a prefixed or dollar-quoted string, DEFAULT, a row of another length) is kept whole.
 * Everything outside the removed elements is kept byte for byte, so no function, subquery,
 * CTE, locking clause, hint or statement separator can disappear.
 */
export interface SqlShape {
  /** The shape's text. Equal to the input (the same string) when nothing was cut. */
  readonly text: string;
  /** Lists cut. */
  readonly collapsed: number;
  /** A literal, quoted identifier or comment runs to the end of the text. */
  readonly unterminated: boolean;
}

export interface ShapeOptions {
  /**
   * Rewrites every parameter `$n` as `$1` (routing: the parser's answer never depends on the
   * number, and ORMs renumber a trailing LIMIT after each list size). Default false.
   */
  readonly renumberParams?: boolean;
  /** Text put where elements were cut, e.g. ` /*, ... *\/` for display. Default none. */
  readonly marker?: string;
}

const OPEN_PAREN = 40;
const CLOSE_PAREN = 41;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;
const COLON = 58;
const QUOTE = 39;
const DOLLAR = 36;
const PLUS = 43;
const MINUS = 45;
const DOT = 46;
/** `$n` with more digits may be "parameter number too large": never rewritten. */
const MAX_PARAM_DIGITS = 6;

/*
 * Fast paths. ORMs write long lists of bare parameters (`$1, $2, ...`) or integers, and the
 * character loop below costs ~10 ns a character: 3.5 ms for an IN list of 40,000. A sticky
 * regular expression skips a run of such elements at native speed. It accepts a strict subset
 * of what readElement() accepts (no sign, no cast, no fraction), so whatever it stops at is
 * handed back to the character loop, which decides as before.
 */
const WS = '[ \\t\\n\\r\\f\\v]*';
/** A bare `$n` or unsigned integer, not followed by an identifier character, `.` or a cast. */
const BARE = `(?:\\$\\d{1,${MAX_PARAM_DIGITS}}|\\d+)(?![A-Za-z0-9_$.\\u0080-\\uffff]|${WS}::)`;
/** `, e` repeated: the rest of a list after its first element. */
const BARE_ELEMENTS = new RegExp(`(?:${WS},${WS}${BARE})*`, 'y');
/** `, (e, ..., e)` repeated, rows of one width; built per width (cached, widths are few). */
const bareRows = new Map<number, RegExp>();
const MAX_FAST_ROW_WIDTH = 64;

function bareRowsOf(width: number): RegExp {
  let re = bareRows.get(width);
  if (re === undefined) {
    const row = `\\(${WS}${BARE}(?:${WS},${WS}${BARE}){${width - 1}}${WS}\\)`;
    re = new RegExp(`(?:${WS},${WS}${row})*`, 'y');
    bareRows.set(width, re);
  }
  return re;
}

/** End of the run `re` matches at `from` (`from` itself when it matches nothing). */
function skipRun(re: RegExp, sql: string, from: number): number {
  re.lastIndex = from;
  return re.test(sql) ? re.lastIndex : from;
}

/** Computes the shape of `sql` in one linear pass. */
export function shapeOf(sql: string, options: ShapeOptions = {}): SqlShape {
  const renumber = options.renumberParams === true;
  const marker = options.marker ?? '';
  const lexer = new Lexer(sql);
  let parts: string[] | undefined;
  let copied = 0;
  let collapsed = 0;
  let unterminated = false;
  for (;;) {
    const kind = lexer.next();
    if (kind === Token.End) break;
    if (kind === Token.Unterminated) {
      unterminated = true;
      break;
    }
    if (kind === Token.Param) {
      if (!renumber) continue;
      const digits = lexer.end - lexer.start - 1;
      if (digits > MAX_PARAM_DIGITS || (digits === 1 && sql.charCodeAt(lexer.start + 1) === 49))
        continue;
      parts ??= [];
      parts.push(sql.slice(copied, lexer.start), '$1');
      copied = lexer.end;
      continue;
    }
    if (kind !== Token.Word) continue;
    const length = lexer.end - lexer.start;
    if (length !== 2 && length !== 5 && length !== 6) continue;
    const word = sql.slice(lexer.start, lexer.end).toLowerCase();
    const listKind =
      word === 'in' ? 'in' : word === 'values' ? 'values' : word === 'array' ? 'array' : undefined;
    if (listKind === undefined) continue;
    let open = lexer.end;
    while (open < sql.length && isSpace(sql.charCodeAt(open))) open++;
    const cut = findCut(sql, open, listKind);
    if (cut === undefined) continue;
    parts ??= [];
    // The kept opening and first element (short) still get their parameters renumbered.
    const kept = sql.slice(lexer.end, cut.from);
    parts.push(
      sql.slice(copied, lexer.end),
      renumber ? shapeOf(kept, { renumberParams: true }).text : kept,
      marker,
    );
    copied = cut.to;
    lexer.pos = cut.to;
    collapsed++;
  }
  if (parts === undefined) return { text: sql, collapsed, unterminated };
  parts.push(sql.slice(copied));
  return { text: parts.join(''), collapsed, unterminated };
}

interface Cut {
  /** End of the first element (kept). */
  readonly from: number;
  /** Start of what follows the last element (kept). */
  readonly to: number;
}

/** Where to cut a list whose opening bracket is at `open`, or undefined to keep it whole. */
function findCut(sql: string, open: number, kind: 'in' | 'values' | 'array'): Cut | undefined {
  const c = sql.charCodeAt(open);
  if (kind === 'array')
    return c === OPEN_BRACKET ? cutElements(sql, open + 1, CLOSE_BRACKET) : undefined;
  if (c !== OPEN_PAREN) return undefined;
  if (kind === 'in') {
    let first = open + 1;
    while (first < sql.length && isSpace(sql.charCodeAt(first))) first++;
    return sql.charCodeAt(first) === OPEN_PAREN
      ? cutRows(sql, first, CLOSE_PAREN)
      : cutElements(sql, open + 1, CLOSE_PAREN);
  }
  return cutRows(sql, open, undefined);
}

/** The cast of the element readElement() read last: its lower-cased type name, or ''. */
let elementCast = '';

/**
 * `e1, e2, ...` followed by `close`, starting at `from`. Cuts after e1 up to the closer when
 * there are at least two elements and all are plain constants with the same cast.
 */
function cutElements(sql: string, from: number, close: number): Cut | undefined {
  const firstEnd = readElement(sql, from);
  if (firstEnd === -1) return undefined;
  const cast = elementCast;
  const runEnd = cast === '' ? skipRun(BARE_ELEMENTS, sql, firstEnd) : firstEnd;
  let at = skipSpace(sql, runEnd);
  let count = runEnd > firstEnd ? 2 : 1;
  while (sql.charCodeAt(at) === COMMA) {
    const end = readElement(sql, at + 1);
    if (end === -1 || elementCast !== cast) return undefined;
    at = skipSpace(sql, end);
    count++;
  }
  if (sql.charCodeAt(at) !== close || count < 2) return undefined;
  return { from: firstEnd, to: at };
}

/**
 * `(row), (row), ...` starting at the first row's `(`. For IN the list must then end with
 * `close`; for VALUES (close undefined) it ends at the first thing that is not `, (`. All rows
 * must have the first row's length and casts.
 */
function cutRows(sql: string, from: number, close: number | undefined): Cut | undefined {
  const casts: string[] = [];
  const firstEnd = readRow(sql, from, casts);
  if (firstEnd === -1) return undefined;
  const bare = casts.length <= MAX_FAST_ROW_WIDTH && casts.every((cast) => cast === '');
  const runEnd = bare ? skipRun(bareRowsOf(casts.length), sql, firstEnd) : firstEnd;
  let at = skipSpace(sql, runEnd);
  let last = runEnd;
  let count = runEnd > firstEnd ? 2 : 1;
  while (sql.charCodeAt(at) === COMMA) {
    const open = skipSpace(sql, at + 1);
    if (sql.charCodeAt(open) !== OPEN_PAREN) return undefined;
    const end = readRow(sql, open, casts);
    if (end === -1) return undefined;
    last = end;
    at = skipSpace(sql, end);
    count++;
  }
  if (count < 2) return undefined;
  if (close === undefined) return { from: firstEnd, to: last };
  return sql.charCodeAt(at) === close ? { from: firstEnd, to: at } : undefined;
}

/**
 * A row of plain constants; returns its end or -1. The first row (empty `casts`) records its
 * elements' casts, every later row must match them in number and type.
 */
function readRow(sql: string, open: number, casts: string[]): number {
  const recording = casts.length === 0;
  let at = open + 1;
  let index = 0;
  for (;;) {
    const end = readElement(sql, at);
    if (end === -1) return -1;
    if (recording) casts.push(elementCast);
    else if (index >= casts.length || casts[index] !== elementCast) return -1;
    index++;
    at = skipSpace(sql, end);
    const c = sql.charCodeAt(at);
    if (c === CLOSE_PAREN) return index === casts.length ? at + 1 : -1;
    if (c !== COMMA) return -1;
    at++;
  }
}

/** A plain constant (see SqlShape) after optional whitespace at `from`: its end, or -1. */
function readElement(sql: string, from: number): number {
  elementCast = '';
  let at = skipSpace(sql, from);
  let c = sql.charCodeAt(at);
  if (c === PLUS || c === MINUS) {
    const d = sql.charCodeAt(at + 1);
    if (!(isDigit(d) || (d === DOLLAR && isDigit(sql.charCodeAt(at + 2))))) return -1;
    at++;
    c = sql.charCodeAt(at);
  }
  let end = -1;
  if (c === DOLLAR) end = readParam(sql, at);
  else if (isDigit(c)) end = readNumber(sql, at);
  else if (c === QUOTE) end = readPlainString(sql, at);
  else if (isIdentStart(c)) end = readConstantWord(sql, at);
  if (end === -1) return -1;
  const afterSpace = skipSpace(sql, end);
  if (sql.charCodeAt(afterSpace) !== COLON || sql.charCodeAt(afterSpace + 1) !== COLON) return end;
  const typeStart = skipSpace(sql, afterSpace + 2);
  const t = sql.charCodeAt(typeStart);
  if (!isIdentStart(t) || t >= 128) return -1;
  let typeEnd = typeStart + 1;
  while (typeEnd < sql.length && isIdentPart(sql.charCodeAt(typeEnd))) typeEnd++;
  const next = sql.charCodeAt(typeEnd);
  // Qualified, modified, array or quoted types, and `$` in the name, are not plain.
  if (next === DOT || next === OPEN_PAREN || next === OPEN_BRACKET || next === 34) return -1;
  const cast = sql.slice(typeStart, typeEnd).toLowerCase();
  if (cast.includes('$')) return -1;
  elementCast = cast;
  return typeEnd;
}

function readParam(sql: string, at: number): number {
  let end = at + 1;
  while (isDigit(sql.charCodeAt(end))) end++;
  const digits = end - at - 1;
  if (digits === 0 || digits > MAX_PARAM_DIGITS) return -1;
  return isIdentPart(sql.charCodeAt(end)) ? -1 : end;
}

/** `123`, `1.5`, `2e10`, `3.0e-2`; anything else (`1.`, `0x1f`, `1_000`, junk) is not plain. */
function readNumber(sql: string, at: number): number {
  let end = at;
  while (isDigit(sql.charCodeAt(end))) end++;
  if (sql.charCodeAt(end) === DOT) {
    if (!isDigit(sql.charCodeAt(end + 1))) return -1;
    end++;
    while (isDigit(sql.charCodeAt(end))) end++;
  }
  const e = sql.charCodeAt(end);
  if (e === 101 || e === 69) {
    end++;
    const sign = sql.charCodeAt(end);
    if (sign === PLUS || sign === MINUS) end++;
    if (!isDigit(sql.charCodeAt(end))) return -1;
    while (isDigit(sql.charCodeAt(end))) end++;
  }
  const next = sql.charCodeAt(end);
  return isIdentPart(next) || next === DOT ? -1 : end;
}

/** `'...'` with doubled quotes; a newline-separated continuation is left to the caller. */
function readPlainString(sql: string, at: number): number {
  let i = at + 1;
  for (;;) {
    const close = sql.indexOf("'", i);
    if (close === -1) return -1;
    if (sql.charCodeAt(close + 1) !== QUOTE) return close + 1;
    i = close + 2;
  }
}

function readConstantWord(sql: string, at: number): number {
  let end = at + 1;
  while (end < sql.length && isIdentPart(sql.charCodeAt(end))) end++;
  const length = end - at;
  if (length !== 4 && length !== 5) return -1;
  const word = sql.slice(at, end).toLowerCase();
  return word === 'null' || word === 'true' || word === 'false' ? end : -1;
}

function skipSpace(sql: string, from: number): number {
  let at = from;
  while (at < sql.length && isSpace(sql.charCodeAt(at))) at++;
  return at;
}
