import { parseSync, type ScanToken, scanSync } from 'libpg-query';
import {
  type AstRecord,
  arrayField,
  isRecord,
  quoteIdent,
  recordField,
  stringField,
  stringList,
  unwrapNode,
} from '../sql/index.js';

/**
 * `x NOT IN (SELECT y FROM t WHERE p)` -> `NOT EXISTS (SELECT 1 FROM t WHERE (p) AND o.x = t.y)`.
 *
 * The two differ when x or y can be NULL: a NULL among the y values makes NOT IN yield NULL
 * (no row) where NOT EXISTS yields true, and a NULL x makes NOT IN yield NULL where NOT EXISTS
 * yields true. So this module only finds candidates and says which columns must be NOT NULL;
 * the caller checks the catalog (attnotnull) and rewrites only when both are. libpg-query 18
 * has no deparser, so the rewrite edits the original text at token positions from the
 * scanner, keeping everything else byte for byte.
 */

export interface ColumnRefTarget {
  readonly relation: string;
  readonly schema?: string;
  /** The name the query refers to the relation by: its alias, else its name. */
  readonly reference: string;
  readonly column: string;
}

export interface NotInCandidate {
  /** UTF-8 byte range of `x NOT IN (...)` in the original text. */
  readonly start: number;
  readonly end: number;
  readonly outer: ColumnRefTarget;
  readonly inner: ColumnRefTarget;
  /** The NOT EXISTS text that replaces the range. */
  readonly replacement: string;
}

/** Clauses that change what the subquery returns, so the predicate cannot be pushed into it. */
const SUBQUERY_BLOCKERS = [
  'groupClause',
  'havingClause',
  'distinctClause',
  'limitCount',
  'limitOffset',
  'sortClause',
  'windowClause',
  'withClause',
  'valuesLists',
  'lockingClause',
  'intoClause',
  'larg',
  'rarg',
] as const;

interface RelationRef {
  readonly relation: string;
  readonly schema?: string;
  readonly reference: string;
}

/** The single plain table a SELECT reads, or undefined when it reads anything else. */
function singleRelation(select: AstRecord): RelationRef | undefined {
  const from = arrayField(select, 'fromClause');
  if (from?.length !== 1) return undefined;
  const node = unwrapNode(from[0]);
  if (node?.type !== 'RangeVar') return undefined;
  const relation = stringField(node.body, 'relname');
  if (relation === undefined || stringField(node.body, 'catalogname') !== undefined)
    return undefined;
  const schema = stringField(node.body, 'schemaname');
  const alias = recordField(node.body, 'alias');
  if (alias !== undefined && arrayField(alias, 'colnames') !== undefined) return undefined;
  const reference = (alias && stringField(alias, 'aliasname')) ?? relation;
  return { relation, reference, ...(schema === undefined ? {} : { schema }) };
}

/** A column of `relation`, written bare or qualified by its reference name. */
function columnOf(
  value: unknown,
  relation: RelationRef,
): { column: string; location: number } | undefined {
  const node = unwrapNode(value);
  if (node?.type !== 'ColumnRef') return undefined;
  const parts = stringList(node.body.fields);
  const location = node.body.location;
  if (parts === undefined || typeof location !== 'number') return undefined;
  if (parts.length === 1) return { column: parts[0]!, location };
  if (parts.length === 2 && parts[0] === relation.reference) return { column: parts[1]!, location };
  return undefined;
}

function conjuncts(where: unknown): readonly unknown[] {
  const node = unwrapNode(where);
  if (node?.type === 'BoolExpr' && node.body.boolop === 'AND_EXPR') {
    return arrayField(node.body, 'args') ?? [];
  }
  return where === undefined ? [] : [where];
}

function isKeyword(token: ScanToken | undefined, word: string): boolean {
  return token !== undefined && token.tokenName !== 'IDENT' && token.text.toUpperCase() === word;
}

const isComment = (t: ScanToken): boolean =>
  t.tokenName === 'SQL_COMMENT' || t.tokenName === 'C_COMMENT';

interface Shape {
  readonly start: number;
  readonly end: number;
  readonly from: readonly [number, number];
  readonly where: readonly [number, number] | undefined;
}

/**
 * Checks that the text at `location` reads `col NOT IN ( SELECT ... FROM ... [WHERE ...] )`
 * with no comment inside (a `--` comment would swallow the text appended after it), and
 * returns the byte ranges of the FROM and WHERE parts of the subquery.
 */
function textShape(tokens: readonly ScanToken[], location: number): Shape | undefined {
  let i = tokens.findIndex((t) => t.start === location);
  if (i === -1) return undefined;
  const start = tokens[i]!.start;
  i++;
  // Column names may be unreserved keywords (`name`, `type`), which are not IDENT tokens.
  while (tokens[i]?.text === '.' && tokens[i + 1] !== undefined) i += 2;
  if (!isKeyword(tokens[i], 'NOT') || !isKeyword(tokens[i + 1], 'IN')) return undefined;
  if (tokens[i + 2]?.text !== '(' || !isKeyword(tokens[i + 3], 'SELECT')) return undefined;
  let depth = 0;
  let from: number | undefined;
  let where: number | undefined;
  for (let j = i + 2; j < tokens.length; j++) {
    const token = tokens[j]!;
    if (isComment(token)) return undefined;
    if (token.text === '(') depth++;
    else if (token.text === ')') {
      depth--;
      if (depth === 0) {
        if (from === undefined) return undefined;
        const fromEnd = where ?? token.start;
        return {
          start,
          end: token.end,
          from: [from, fromEnd],
          where:
            where === undefined
              ? undefined
              : [tokens.find((t) => t.start === where)!.end, token.start],
        };
      }
    } else if (depth === 1 && from === undefined && isKeyword(token, 'FROM')) from = token.start;
    else if (
      depth === 1 &&
      from !== undefined &&
      where === undefined &&
      isKeyword(token, 'WHERE')
    ) {
      where = token.start;
    }
  }
  return undefined;
}

/**
 * Every `col NOT IN (SELECT col FROM table [WHERE ...])` among the top-level AND terms of a
 * single-table SELECT's WHERE clause. Never throws; returns [] for anything it does not read.
 */
export function findNotInCandidates(sql: string): NotInCandidate[] {
  try {
    return candidates(sql);
  } catch {
    return [];
  }
}

function candidates(sql: string): NotInCandidate[] {
  if (sql.includes('\0')) return [];
  const parsed: unknown = parseSync(sql);
  const stmts = isRecord(parsed) ? arrayField(parsed, 'stmts') : undefined;
  if (stmts?.length !== 1 || !isRecord(stmts[0])) return [];
  const statement = unwrapNode(stmts[0].stmt);
  if (statement?.type !== 'SelectStmt') return [];
  const select = statement.body;
  if (select.op !== undefined && select.op !== 'SETOP_NONE') return [];
  const outer = singleRelation(select);
  if (outer === undefined) return [];
  const tokens = scanSync(sql).tokens;
  const bytes = Buffer.from(sql, 'utf8');
  const text = (range: readonly [number, number]): string =>
    bytes.subarray(range[0], range[1]).toString('utf8').trim();
  const found: NotInCandidate[] = [];
  for (const term of conjuncts(select.whereClause)) {
    const not = unwrapNode(term);
    if (not?.type !== 'BoolExpr' || not.body.boolop !== 'NOT_EXPR') continue;
    const args = arrayField(not.body, 'args');
    const link = args?.length === 1 ? unwrapNode(args[0]) : undefined;
    if (link?.type !== 'SubLink' || link.body.subLinkType !== 'ANY_SUBLINK') continue;
    const operator = stringList(link.body.operName);
    if (operator !== undefined && (operator.length !== 1 || operator[0] !== '=')) continue;
    const test = columnOf(link.body.testexpr, outer);
    const sub = unwrapNode(link.body.subselect);
    if (test === undefined || sub?.type !== 'SelectStmt') continue;
    if (sub.body.op !== undefined && sub.body.op !== 'SETOP_NONE') continue;
    if (SUBQUERY_BLOCKERS.some((key) => sub.body[key] !== undefined)) continue;
    const inner = singleRelation(sub.body);
    // Same reference name: the inner one would shadow the outer in the new correlation.
    if (inner === undefined || inner.reference === outer.reference) continue;
    const targets = arrayField(sub.body, 'targetList');
    const target = targets?.length === 1 ? unwrapNode(targets[0]) : undefined;
    const innerColumn = target?.type === 'ResTarget' ? columnOf(target.body.val, inner) : undefined;
    if (innerColumn === undefined) continue;
    const shape = textShape(tokens, test.location);
    if (shape === undefined) continue;
    const correlation =
      `${quoteIdent(outer.reference)}.${quoteIdent(test.column)} = ` +
      `${quoteIdent(inner.reference)}.${quoteIdent(innerColumn.column)}`;
    const where = shape.where === undefined ? '' : `(${text(shape.where)}) AND `;
    found.push({
      start: shape.start,
      end: shape.end,
      outer: { ...outer, column: test.column },
      inner: { ...inner, column: innerColumn.column },
      replacement: `NOT EXISTS (SELECT 1 ${text(shape.from)} WHERE ${where}${correlation})`,
    });
  }
  return found;
}

/** The text with each candidate's range replaced; candidates must come from the same text. */
export function applyRewrites(sql: string, chosen: readonly NotInCandidate[]): string {
  const bytes = Buffer.from(sql, 'utf8');
  let out = '';
  let copied = 0;
  for (const c of [...chosen].sort((a, b) => a.start - b.start)) {
    if (c.start < copied) continue;
    out += bytes.subarray(copied, c.start).toString('utf8') + c.replacement;
    copied = c.end;
  }
  return out + bytes.subarray(copied).toString('utf8');
}
