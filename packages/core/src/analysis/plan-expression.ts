/**
 * Reading the expression texts EXPLAIN prints (`Filter`, `Index Cond`, `Sort Key`...).
 *
 * They come from PostgreSQL's ruleutils deparser, which is regular enough to read with a small
 * tokenizer: identifiers that need quoting are double-quoted (so an unquoted identifier is
 * all lower case), keywords are upper case (AND, OR, NOT, ANY, IS NULL, SubPlan...), literals
 * are single-quoted and usually followed by a `::type` cast. This is best effort, not a
 * parser: a column inside an unusual construct may be missed, but a literal is never taken
 * for a column and a function or type name is never reported as one.
 */

export type ExpressionTokenKind =
  | 'word'
  | 'quoted'
  | 'string'
  | 'number'
  | 'param'
  | 'cast'
  | 'operator'
  | 'punct';

export interface ExpressionToken {
  readonly kind: ExpressionTokenKind;
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD_PART = /[A-Za-z0-9_$\u0080-\uffff]/;
const DIGIT = /[0-9]/;
const OPERATOR_CHAR = /[+\-*/<>=~!@#%^&|`?]/;
/** Lower-case words ruleutils prints that are not identifiers. */
const LOWER_CASE_KEYWORDS: ReadonlySet<string> = new Set(['true', 'false', 'hashed']);
/** The number after these names a subplan, not a value. */
const PLAN_REFERENCES: ReadonlySet<string> = new Set(['SubPlan', 'InitPlan', 'CTE']);
/** String-literal prefixes: E'..', B'..', X'..', N'..'. */
const LITERAL_PREFIXES: ReadonlySet<string> = new Set(['e', 'b', 'x', 'n']);

function scanQuoted(text: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < text.length) {
    if (text[i] === quote) {
      if (text[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    // Only E'' strings use backslash escapes, but skipping an escaped quote in any string is
    // the safe reading: it can only make a literal longer, never expose part of one.
    if (quote === "'" && text[i] === '\\') i++;
    i++;
  }
  return text.length;
}

function scanNumber(text: string, start: number): number {
  let i = start;
  while (i < text.length && /[0-9._]/.test(text[i]!)) i++;
  if (i < text.length && /[eE]/.test(text[i]!) && /[-+0-9]/.test(text[i + 1] ?? '')) {
    i += 2;
    while (i < text.length && DIGIT.test(text[i]!)) i++;
  }
  return i;
}

/** Splits an EXPLAIN expression into tokens; never throws, whatever the input. */
export function tokenizeExpression(text: string): ExpressionToken[] {
  const tokens: ExpressionToken[] = [];
  const push = (kind: ExpressionTokenKind, start: number, end: number): void => {
    tokens.push({ kind, text: text.slice(start, end), start, end });
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\n' || c === '\t' || c === '\r') {
      i++;
    } else if (c === "'") {
      const end = scanQuoted(text, i, "'");
      push('string', i, end);
      i = end;
    } else if (c === '"') {
      const end = scanQuoted(text, i, '"');
      push('quoted', i, end);
      i = end;
    } else if (c === '$' && DIGIT.test(text[i + 1] ?? '')) {
      let end = i + 1;
      while (end < text.length && DIGIT.test(text[end]!)) end++;
      push('param', i, end);
      i = end;
    } else if (DIGIT.test(c) || (c === '.' && DIGIT.test(text[i + 1] ?? ''))) {
      const end = scanNumber(text, i);
      push('number', i, end);
      i = end;
    } else if (WORD_START.test(c)) {
      let end = i + 1;
      while (end < text.length && WORD_PART.test(text[end]!)) end++;
      if (text[end] === "'" && LITERAL_PREFIXES.has(text.slice(i, end).toLowerCase())) {
        end = scanQuoted(text, end, "'");
        push('string', i, end);
      } else {
        push('word', i, end);
      }
      i = end;
    } else if (c === ':' && text[i + 1] === ':') {
      push('cast', i, i + 2);
      i += 2;
    } else if (OPERATOR_CHAR.test(c)) {
      let end = i + 1;
      while (end < text.length && OPERATOR_CHAR.test(text[end]!)) end++;
      push('operator', i, end);
      i = end;
    } else {
      push('punct', i, i + 1);
      i++;
    }
  }
  return tokens;
}

function unquote(token: ExpressionToken): string {
  return token.kind === 'quoted' ? token.text.slice(1, -1).replaceAll('""', '"') : token.text;
}

function isIdentifier(token: ExpressionToken | undefined): token is ExpressionToken {
  if (token === undefined) return false;
  if (token.kind === 'quoted') return token.text.length >= 2;
  if (token.kind !== 'word') return false;
  // ruleutils quotes any identifier with an upper-case letter, so an unquoted one that has
  // one is a keyword (AND, ANY, SubPlan...).
  return token.text === token.text.toLowerCase() && !LOWER_CASE_KEYWORDS.has(token.text);
}

/** Index just past a `::type` cast starting at `i` (the `::` token), or `i` if none. */
function skipCast(tokens: readonly ExpressionToken[], i: number): number {
  if (tokens[i]?.kind !== 'cast') return i;
  let j = i + 1;
  // Type names may be several words (`timestamp with time zone`), qualified, quoted.
  while (
    tokens[j]?.kind === 'word' ||
    tokens[j]?.kind === 'quoted' ||
    (tokens[j]?.text === '.' && tokens[j + 1] !== undefined)
  ) {
    j++;
  }
  if (tokens[j]?.text === '(') {
    // A type modifier: numeric(10,2), character varying(20).
    let k = j + 1;
    while (k < tokens.length && tokens[k]!.text !== ')') k++;
    j = k + 1;
  }
  while (tokens[j]?.text === '[' && tokens[j + 1]?.text === ']') j += 2;
  return skipCast(tokens, j);
}

export interface ExpressionColumn {
  readonly name: string;
  /** The relation alias the column was qualified with, if any. */
  readonly qualifier?: string;
  /** Compared with `=` or `= ANY (...)`: such columns lead a useful btree index. */
  readonly equality: boolean;
}

/**
 * Column references in an EXPLAIN expression, in order of first appearance, each once.
 * Given the scanned relation's alias, columns qualified with another alias (outer
 * references in a join or a correlated subquery) are left out. System columns are left out.
 *
 * `(customer_id = 42)` gives customer_id; `((o.status)::text = 'x'::text)` gives status;
 * `(("Weird Col" > 5) AND (lower(email) = 'x'))` gives `Weird Col` and email.
 */
export function expressionColumns(expression: string, alias?: string): ExpressionColumn[] {
  const tokens = tokenizeExpression(expression);
  const found = new Map<string, ExpressionColumn>();
  let i = 0;
  while (i < tokens.length) {
    const token = tokens[i]!;
    if (token.kind === 'cast') {
      i = skipCast(tokens, i);
      continue;
    }
    if (!isIdentifier(token) || tokens[i - 1]?.text === '.') {
      i++;
      continue;
    }
    // Collect a dotted name: col, t.col, schema.t.col.
    const parts = [unquote(token)];
    let j = i + 1;
    while (tokens[j]?.text === '.' && isIdentifier(tokens[j + 1])) {
      parts.push(unquote(tokens[j + 1]!));
      j += 2;
    }
    const next = tokens[j];
    if (next?.text === '(' || next?.text === '.') {
      // A function call, or a field of a composite value: not a plain column.
      i = j;
      continue;
    }
    const name = parts[parts.length - 1]!;
    const qualifier = parts.length > 1 ? parts[parts.length - 2] : undefined;
    const equality = isEquality(tokens[i - 1]) || isEquality(tokens[afterOperand(tokens, i, j)]);
    i = j;
    if (SYSTEM_COLUMNS.has(name)) continue;
    if (alias !== undefined && qualifier !== undefined && qualifier !== alias) continue;
    const previous = found.get(name);
    if (previous === undefined) {
      found.set(name, qualifier === undefined ? { name, equality } : { name, qualifier, equality });
    } else if (equality && !previous.equality) {
      found.set(name, { ...previous, equality: true });
    }
  }
  return [...found.values()];
}

/**
 * Index of the token after the operand that starts with the column at `start` (name ending
 * before `end`): past a cast, and past `(col)::type` as ruleutils prints a cast column.
 */
function afterOperand(tokens: readonly ExpressionToken[], start: number, end: number): number {
  const k = skipCast(tokens, end);
  if (
    tokens[start - 1]?.text === '(' &&
    tokens[k]?.text === ')' &&
    tokens[k + 1]?.kind === 'cast'
  ) {
    return skipCast(tokens, k + 1);
  }
  return k;
}

function isEquality(token: ExpressionToken | undefined): boolean {
  return token?.kind === 'operator' && token.text === '=';
}

const SYSTEM_COLUMNS: ReadonlySet<string> = new Set([
  'ctid',
  'xmin',
  'xmax',
  'cmin',
  'cmax',
  'tableoid',
]);

/**
 * Column names an index on this expression would list, equality-compared columns first (a
 * btree serves `a = 1 AND b > 2` best as `(a, b)`), then the rest in order of appearance.
 */
export function filterColumns(expression: string, alias?: string): string[] {
  const columns = expressionColumns(expression, alias);
  return [
    ...columns.filter((c) => c.equality).map((c) => c.name),
    ...columns.filter((c) => !c.equality).map((c) => c.name),
  ];
}

export interface SortKeyColumn {
  readonly name: string;
  readonly qualifier?: string;
  readonly descending: boolean;
  readonly nullsFirst?: boolean;
}

/**
 * A `Sort Key` entry that is a plain column (`created_at DESC`, `o.id`, `"Col" NULLS FIRST`);
 * undefined for an expression, which a plain column index cannot serve.
 */
export function sortKeyColumn(key: string): SortKeyColumn | undefined {
  const tokens = tokenizeExpression(key);
  let end = tokens.length;
  let descending = false;
  let nullsFirst: boolean | undefined;
  if (tokens[end - 2]?.text === 'NULLS' && tokens[end - 1]?.kind === 'word') {
    nullsFirst = tokens[end - 1]!.text === 'FIRST';
    end -= 2;
  }
  if (tokens[end - 1]?.text === 'DESC' || tokens[end - 1]?.text === 'ASC') {
    descending = tokens[end - 1]!.text === 'DESC';
    end -= 1;
  }
  const parts: string[] = [];
  for (let i = 0; i < end; i++) {
    const token = tokens[i]!;
    if (i % 2 === 0 ? !isIdentifier(token) : token.text !== '.') return undefined;
    if (i % 2 === 0) parts.push(unquote(token));
  }
  if (parts.length === 0 || end % 2 === 0) return undefined;
  const name = parts[parts.length - 1]!;
  const qualifier = parts.length > 1 ? parts[parts.length - 2] : undefined;
  const column: SortKeyColumn = { name, descending };
  return {
    ...column,
    ...(qualifier === undefined ? {} : { qualifier }),
    ...(nullsFirst === undefined ? {} : { nullsFirst }),
  };
}

// ---------------------------------------------------------------------------------------------
// Redaction

/**
 * Replaces every literal in an expression with `?` (`'?'` for strings, keeping their cast), so
 * `(password = 'hunter2'::text)` becomes `(password = '?'::text)`. A plan made with bound
 * parameters prints their values as literals, hence this runs on every captured plan.
 * Numbers that name a subplan (`SubPlan 1`) or a type modifier (`numeric(10,2)`) are kept.
 */
export function redactExpression(expression: string): string {
  const tokens = tokenizeExpression(expression);
  let out = '';
  let copied = 0;
  let i = 0;
  while (i < tokens.length) {
    const token = tokens[i]!;
    if (token.kind === 'cast') {
      i = Math.max(skipCast(tokens, i), i + 1);
      continue;
    }
    let replacement: string | undefined;
    if (token.kind === 'string') replacement = "'?'";
    else if (token.kind === 'number' && !PLAN_REFERENCES.has(tokens[i - 1]?.text ?? '')) {
      replacement = '?';
    }
    if (replacement !== undefined) {
      out += expression.slice(copied, token.start) + replacement;
      copied = token.end;
    }
    i++;
  }
  return out + expression.slice(copied);
}
