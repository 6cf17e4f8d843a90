import { type ExpressionToken, tokenizeExpression } from '../analysis/index.js';
import type { PartialPredicate, QueryClient } from '../sql/index.js';
import { asRow, num } from './sql.js';

/**
 * Partial-index predicates from a plan's Filter text.
 *
 * A predicate is proposed only when all of this holds, so it is both safe and worth it:
 * - the Filter is a conjunction (no top-level OR) and one conjunct is exactly
 *   `column = 'constant'` (or a number), as ruleutils prints it (`(status = 'open'::text)`,
 *   `((status)::text = 'open'::text)`); every other shape is ignored;
 * - the plan was not redacted (a redacted plan shows `'?'`, which is never used);
 * - the column has few distinct values (pg_stats.n_distinct at most `PARTIAL_MAX_DISTINCT`)
 *   and the constant is one of its most common values covering at most
 *   `PARTIAL_MAX_FRACTION` of the rows.
 * The last rule keeps literals out of the report unless they are categories the statistics
 * already show (invariant 6), and proposes a partial index only when it is much smaller than
 * a full one. A partial index serves only statements that repeat the same constant in their
 * text: a statement with `status = $1` cannot use it (the planner must prove the predicate).
 */
export const PARTIAL_MAX_DISTINCT = 20;
export const PARTIAL_MAX_FRACTION = 0.2;

export interface ConstantEquality {
  readonly column: string;
  readonly qualifier?: string;
  readonly value: string;
}

function isIdentifier(token: ExpressionToken | undefined): boolean {
  if (token === undefined) return false;
  if (token.kind === 'quoted') return token.text.length >= 2;
  // ruleutils quotes every identifier with an upper-case letter: AND, ANY... are keywords.
  return (
    token.kind === 'word' &&
    token.text === token.text.toLowerCase() &&
    token.text !== 'true' &&
    token.text !== 'false'
  );
}

function unquote(token: ExpressionToken): string {
  return token.kind === 'quoted' ? token.text.slice(1, -1).replaceAll('""', '"') : token.text;
}

/** Index past a `::type` (words, quoted names, dots, a modifier, array brackets), chained. */
function skipCast(tokens: readonly ExpressionToken[], i: number): number {
  let j = i;
  while (tokens[j]?.kind === 'cast') {
    j++;
    while (tokens[j]?.kind === 'word' || tokens[j]?.kind === 'quoted' || tokens[j]?.text === '.') {
      j++;
    }
    if (tokens[j]?.text === '(') {
      while (j < tokens.length && tokens[j]!.text !== ')') j++;
      j++;
    }
    while (tokens[j]?.text === '[' && tokens[j + 1]?.text === ']') j += 2;
  }
  return j;
}

/** Removes parentheses that wrap the whole token list. */
function unwrap(tokens: readonly ExpressionToken[]): readonly ExpressionToken[] {
  let list = tokens;
  while (list.length >= 2 && list[0]!.text === '(' && list[list.length - 1]!.text === ')') {
    let depth = 0;
    let wraps = true;
    for (let i = 0; i < list.length - 1; i++) {
      if (list[i]!.text === '(') depth++;
      else if (list[i]!.text === ')') depth--;
      if (depth === 0) {
        wraps = false;
        break;
      }
    }
    if (!wraps) break;
    list = list.slice(1, -1);
  }
  return list;
}

/** Top-level AND operands, or undefined when the expression is not a plain conjunction. */
export function conjuncts(
  tokens: readonly ExpressionToken[],
): (readonly ExpressionToken[])[] | undefined {
  const list = unwrap(tokens);
  const parts: (readonly ExpressionToken[])[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const token = list[i]!;
    if (token.text === '(' || token.text === '[') depth++;
    else if (token.text === ')' || token.text === ']') depth--;
    else if (depth === 0 && token.kind === 'word' && token.text === 'OR') return undefined;
    else if (depth === 0 && token.kind === 'word' && token.text === 'AND') {
      parts.push(unwrap(list.slice(start, i)));
      start = i + 1;
    }
  }
  parts.push(unwrap(list.slice(start)));
  return parts.every((p) => p.length > 0) ? parts : undefined;
}

/** `name`, `alias.name`, or `(name)::type` at `i`: the name parts and the index past it. */
function columnOperand(
  tokens: readonly ExpressionToken[],
  i: number,
): { readonly parts: string[]; readonly end: number } | undefined {
  const parenthesized = tokens[i]?.text === '(';
  let j = parenthesized ? i + 1 : i;
  if (!isIdentifier(tokens[j])) return undefined;
  const parts = [unquote(tokens[j]!)];
  j++;
  while (tokens[j]?.text === '.' && isIdentifier(tokens[j + 1])) {
    parts.push(unquote(tokens[j + 1]!));
    j += 2;
  }
  if (parenthesized) {
    if (tokens[j]?.text !== ')' || tokens[j + 1]?.kind !== 'cast') return undefined;
    j++;
  }
  return { parts, end: skipCast(tokens, j) };
}

/**
 * The `column = constant` conjuncts of a plan Filter, for the scan whose alias is `alias`.
 * Only plain single-quoted strings (no E'' escapes) and unsigned numbers count as constants.
 */
export function constantEqualities(filter: string, alias?: string): ConstantEquality[] {
  const parts = conjuncts(tokenizeExpression(filter));
  if (parts === undefined) return [];
  const out: ConstantEquality[] = [];
  for (const part of parts) {
    const column = columnOperand(part, 0);
    if (column === undefined || column.parts.length > 2) continue;
    const operator = part[column.end];
    if (operator?.kind !== 'operator' || operator.text !== '=') continue;
    const literal = part[column.end + 1];
    if (literal === undefined) continue;
    let value: string;
    if (literal.kind === 'string' && literal.text.startsWith("'")) {
      value = literal.text.slice(1, -1).replaceAll("''", "'");
    } else if (literal.kind === 'number') {
      value = literal.text;
    } else {
      continue;
    }
    if (skipCast(part, column.end + 2) !== part.length) continue;
    // The placeholder redactPlan leaves: the real constant is unknown.
    if (value === '?') continue;
    const name = column.parts[column.parts.length - 1]!;
    const qualifier = column.parts.length === 2 ? column.parts[0] : undefined;
    if (alias !== undefined && qualifier !== undefined && qualifier !== alias) continue;
    out.push(
      qualifier === undefined ? { column: name, value } : { column: name, qualifier, value },
    );
  }
  return out;
}

const COLUMN_STATS_SQL = `
SELECT s.attname AS column, s.n_distinct::float8 AS n_distinct,
       s.most_common_vals::text::text[] AS values, s.most_common_freqs::float8[] AS freqs,
       GREATEST(c.reltuples, 0)::float8 AS rows
  FROM pg_catalog.pg_stats s
  JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
 WHERE s.schemaname = $1 AND s.tablename = $2 AND s.attname = ANY ($3::text[])
   AND s.inherited = (c.relkind = 'p')`;

/**
 * The most selective candidate whose column is low-cardinality and whose constant is one of
 * its most common values (see the rules above); undefined when none qualifies.
 */
export async function choosePredicate(
  client: QueryClient,
  schema: string,
  table: string,
  candidates: readonly ConstantEquality[],
): Promise<(PartialPredicate & { readonly fraction: number }) | undefined> {
  if (candidates.length === 0) return undefined;
  const result = await client.query(COLUMN_STATS_SQL, [
    schema,
    table,
    [...new Set(candidates.map((c) => c.column))],
  ]);
  let best: (PartialPredicate & { readonly fraction: number }) | undefined;
  for (const raw of result.rows) {
    const r = asRow(raw);
    const column = typeof r.column === 'string' ? r.column : undefined;
    const nDistinct = num(r.n_distinct);
    const values = Array.isArray(r.values) ? r.values : [];
    const freqs = Array.isArray(r.freqs) ? r.freqs : [];
    if (column === undefined || nDistinct === undefined || nDistinct === 0) continue;
    const distinct = nDistinct > 0 ? nDistinct : -nDistinct * (num(r.rows) ?? 0);
    if (distinct > PARTIAL_MAX_DISTINCT) continue;
    for (const candidate of candidates) {
      if (candidate.column !== column) continue;
      const at = values.indexOf(candidate.value);
      const fraction = at === -1 ? undefined : num(freqs[at]);
      if (fraction === undefined || fraction > PARTIAL_MAX_FRACTION) continue;
      if (best === undefined || fraction < best.fraction) {
        best = { column, value: candidate.value, fraction };
      }
    }
  }
  return best;
}
