import {
  type ExplainResult,
  type ExpressionToken,
  expressionColumns,
  flattenPlan,
  nodeType,
  type PlanNode,
  type PlanVisit,
  planNumber,
  planString,
  planStrings,
  tokenizeExpression,
} from '../analysis/index.js';
import type { SortDirection } from '../sql/index.js';
import { type ConstantEquality, conjuncts, constantEqualities } from './partial.js';

/**
 * How one statement uses each relation it scans, read from its EXPLAIN (VERBOSE) plan: the
 * raw material of index candidates. VERBOSE matters twice: every scan names its schema (so a
 * same-named table elsewhere on search_path is never taken for it) and every column in a
 * condition is qualified by its relation's alias (so a join condition tells which side each
 * column belongs to).
 */

export interface RelationUse {
  readonly schema: string;
  readonly table: string;
  readonly alias: string;
  /** The scan node (or the Gather above a parallel scan) whose cost an index would replace. */
  readonly scan: PlanNode;
  /** Columns compared with `=` or `= ANY (...)` to a value (filters, index conditions). */
  readonly equality: string[];
  /** Columns compared with `<`, `<=`, `>`, `>=` (BETWEEN prints as two of them). */
  readonly range: string[];
  /** Columns equated with a column of another relation (hash, merge, nested-loop joins). */
  readonly joins: string[];
  /** Joins this relation takes part in: the join node, the other side, its join columns. */
  readonly innerOf: {
    readonly join: PlanNode;
    readonly outer: PlanNode;
    readonly columns: string[];
  }[];
  /** ORDER BY under a LIMIT, when every sort key is a column of this relation. */
  sort?: {
    readonly columns: readonly string[];
    readonly order: readonly SortDirection[];
    readonly limit: PlanNode;
  };
  /** GROUP BY keys that are all columns of this relation. */
  group: string[];
  /** Columns the scan outputs or filters on: an index holding all of them serves it alone. */
  readonly needed: Set<string>;
  /** The statement needs the heap row itself (UPDATE/DELETE: ctid): no index-only scan. */
  heapNeeded: boolean;
  /** `column = constant` conjuncts of its Filter, for partial indexes. */
  readonly constants: ConstantEquality[];
  /** Conjuncts (deparsed text) on this relation only, by the columns they compare. */
  readonly conditions: { readonly text: string; readonly columns: readonly string[] }[];
}

const SCANS: ReadonlySet<string> = new Set([
  'Seq Scan',
  'Index Scan',
  'Index Only Scan',
  'Bitmap Heap Scan',
]);
const JOINS: ReadonlySet<string> = new Set(['Hash Join', 'Merge Join', 'Nested Loop']);
const RANGE_OPERATORS: ReadonlySet<string> = new Set(['<', '<=', '>', '>=']);

function unquote(token: ExpressionToken): string {
  return token.kind === 'quoted' ? token.text.slice(1, -1).replaceAll('""', '"') : token.text;
}

function isName(token: ExpressionToken | undefined): token is ExpressionToken {
  if (token === undefined) return false;
  if (token.kind === 'quoted') return token.text.length >= 2;
  return (
    token.kind === 'word' &&
    token.text === token.text.toLowerCase() &&
    !['true', 'false', 'hashed'].includes(token.text)
  );
}

interface ColumnRef {
  readonly qualifier: string;
  readonly column: string;
  /** Token index just past the reference. */
  readonly end: number;
  readonly start: number;
}

/** `alias.column` references (VERBOSE qualifies every column), skipping function names. */
function qualifiedRefs(tokens: readonly ExpressionToken[]): ColumnRef[] {
  const out: ColumnRef[] = [];
  for (let i = 0; i + 2 < tokens.length; i++) {
    if (tokens[i - 1]?.text === '.' || tokens[i - 1]?.kind === 'cast') continue;
    if (!isName(tokens[i]) || tokens[i + 1]?.text !== '.' || !isName(tokens[i + 2])) continue;
    // schema.table.column would be three parts; ruleutils prints alias.column only.
    if (tokens[i + 3]?.text === '(' || tokens[i + 3]?.text === '.') continue;
    out.push({
      qualifier: unquote(tokens[i]!),
      column: unquote(tokens[i + 2]!),
      start: i,
      end: i + 3,
    });
    i += 2;
  }
  return out.filter((r) => !['ctid', 'xmin', 'xmax', 'tableoid'].includes(r.column));
}

/** The operator right after a column (past casts and the closing paren of `(col)::type`). */
function operatorAfter(tokens: readonly ExpressionToken[], ref: ColumnRef): string | undefined {
  let j = ref.end;
  for (let guard = 0; guard < 8 && j < tokens.length; guard++) {
    const t = tokens[j]!;
    if (t.kind === 'operator') return t.text;
    if (t.kind === 'cast' || t.text === ')' || t.kind === 'word') j++;
    else return undefined;
  }
  return undefined;
}

function operatorBefore(tokens: readonly ExpressionToken[], ref: ColumnRef): string | undefined {
  let j = ref.start - 1;
  while (j >= 0 && tokens[j]!.text === '(') j--;
  const t = tokens[j];
  if (t?.kind !== 'operator') return undefined;
  // Mirror so `5 < col` reads as `col > 5`.
  return (
    ({ '<': '>', '>': '<', '<=': '>=', '>=': '<=' } as Record<string, string>)[t.text] ?? t.text
  );
}

/** The column is an argument of a function (`lower(c.email)`): no plain-column index helps. */
function insideCall(tokens: readonly ExpressionToken[], ref: ColumnRef): boolean {
  let j = ref.start - 1;
  while (j >= 0 && tokens[j]!.text === '(') {
    const before = tokens[j - 1];
    if (before !== undefined && (before.kind === 'word' || before.kind === 'quoted')) return true;
    j--;
  }
  return false;
}

function push(list: string[], column: string): void {
  if (!list.includes(column)) list.push(column);
}

/** `o.created_at DESC` -> { qualifier, column, direction }. */
function sortKey(
  text: string,
): { qualifier: string; column: string; direction: SortDirection } | undefined {
  const tokens = tokenizeExpression(text);
  const refs = qualifiedRefs(tokens);
  if (refs.length !== 1 || refs[0]!.start !== 0) return undefined;
  const rest = tokens.slice(refs[0]!.end).map((t) => t.text);
  if (rest.some((t) => !['DESC', 'ASC', 'NULLS', 'FIRST', 'LAST'].includes(t))) return undefined;
  return {
    qualifier: refs[0]!.qualifier,
    column: refs[0]!.column,
    direction: rest.includes('DESC') ? 'desc' : 'asc',
  };
}

/** The parallel wrapper over a scan (Gather / Gather Merge) whose cost the index replaces. */
function replacedNode(visit: PlanVisit): PlanNode {
  const parent = visit.ancestors[0];
  if (parent !== undefined && nodeType(parent).startsWith('Gather')) return parent;
  return visit.node;
}

function subtreeAliases(node: PlanNode): Set<string> {
  const out = new Set<string>();
  for (const { node: n } of flattenPlan(node)) {
    const alias = planString(n, 'Alias');
    if (alias !== undefined && planString(n, 'Relation Name') !== undefined) out.add(alias);
  }
  return out;
}

/** Every relation the plan scans, keyed by alias, with how the statement uses it. */
export function relationUses(plan: ExplainResult): Map<string, RelationUse> {
  const visits = flattenPlan(plan);
  const uses = new Map<string, RelationUse>();
  for (const visit of visits) {
    const node = visit.node;
    if (!SCANS.has(nodeType(node))) continue;
    const table = planString(node, 'Relation Name');
    const schema = planString(node, 'Schema');
    const alias = planString(node, 'Alias') ?? table;
    // Without a schema (a plan not from EXPLAIN VERBOSE) the table is not known exactly.
    if (table === undefined || schema === undefined || alias === undefined) continue;
    if (uses.has(alias)) {
      // The same alias twice (a CTE or subquery scanned again): keep the first, skip guessing.
      continue;
    }
    const use: RelationUse = {
      schema,
      table,
      alias,
      scan: replacedNode(visit),
      equality: [],
      range: [],
      joins: [],
      innerOf: [],
      group: [],
      needed: new Set(),
      heapNeeded: false,
      constants: [],
      conditions: [],
    };
    uses.set(alias, use);
    for (const key of ['Filter', 'Index Cond', 'Recheck Cond']) {
      const text = planString(node, key);
      if (text === undefined) continue;
      readConditions(use, text, key === 'Filter');
    }
    for (const output of planStrings(node, 'Output')) {
      if (output === 'ctid' || output.endsWith('.ctid')) use.heapNeeded = true;
      // A one-relation statement prints its output columns unqualified.
      for (const col of expressionColumns(output, alias)) {
        if (col.qualifier === undefined || col.qualifier === alias) use.needed.add(col.name);
      }
    }
  }
  for (const visit of visits) readJoin(visit, uses);
  for (const visit of visits) readSortAndGroup(visit, uses);
  return uses;
}

function readConditions(use: RelationUse, text: string, isFilter: boolean): void {
  const tokens = tokenizeExpression(text);
  const parts = conjuncts(tokens) ?? [tokens];
  for (const part of parts) {
    const refs = qualifiedRefs(part);
    const own = refs.filter((r) => r.qualifier === use.alias);
    for (const r of own) use.needed.add(r.column);
    const foreign = refs.some((r) => r.qualifier !== use.alias);
    const subplan = part.some((t) => t.text === 'SubPlan' || t.text === 'InitPlan');
    if (own.length !== 1) continue;
    const ref = own[0]!;
    if (insideCall(part, ref)) continue;
    const op = operatorAfter(part, ref) ?? operatorBefore(part, ref);
    if (op === '=') push(foreign ? use.joins : use.equality, ref.column);
    else if (op !== undefined && RANGE_OPERATORS.has(op) && !foreign) push(use.range, ref.column);
    else continue;
    if (!foreign && !subplan && part.length > 0) {
      const start = part[0]!.start;
      const end = part[part.length - 1]!.end;
      use.conditions.push({ text: text.slice(start, end), columns: [ref.column] });
    }
  }
  if (isFilter) use.constants.push(...constantEqualities(text, use.alias));
}

function readJoin(visit: PlanVisit, uses: Map<string, RelationUse>): void {
  const node = visit.node;
  if (!JOINS.has(nodeType(node))) return;
  const children = Array.isArray(node.Plans) ? (node.Plans as PlanNode[]) : [];
  const outer = children.find((c) => planString(c, 'Parent Relationship') === 'Outer');
  const inner = children.find((c) => planString(c, 'Parent Relationship') === 'Inner');
  if (outer === undefined || inner === undefined) return;
  const innerAliases = subtreeAliases(inner);
  const outerAliases = subtreeAliases(outer);
  const conds = ['Hash Cond', 'Merge Cond', 'Join Filter'].flatMap((k) => {
    const t = planString(node, k);
    return t === undefined ? [] : [t];
  });
  // A nested loop's join condition sits in the inner scan's Index Cond or Filter.
  if (nodeType(node) === 'Nested Loop' && conds.length === 0) {
    for (const { node: n } of flattenPlan(inner)) {
      const t = planString(n, 'Index Cond') ?? planString(n, 'Filter');
      if (t !== undefined) conds.push(t);
    }
  }
  const innerColumns = new Map<string, string[]>();
  for (const text of conds) {
    const tokens = tokenizeExpression(text);
    for (const part of conjuncts(tokens) ?? [tokens]) {
      const refs = qualifiedRefs(part);
      const qualifiers = new Set(refs.map((r) => r.qualifier));
      if (qualifiers.size < 2) continue;
      for (const ref of refs) {
        if (operatorAfter(part, ref) !== '=' && operatorBefore(part, ref) !== '=') continue;
        const use = uses.get(ref.qualifier);
        if (use === undefined) continue;
        push(use.joins, ref.column);
        use.needed.add(ref.column);
        if (innerAliases.has(ref.qualifier) || outerAliases.has(ref.qualifier)) {
          const list = innerColumns.get(ref.qualifier) ?? [];
          push(list, ref.column);
          innerColumns.set(ref.qualifier, list);
        }
      }
    }
  }
  // Either side may become the inner side of a nested loop over an index on its join key,
  // driven by the other side.
  for (const [alias, columns] of innerColumns) {
    const other = innerAliases.has(alias) ? outer : inner;
    uses.get(alias)?.innerOf.push({ join: node, outer: other, columns });
  }
}

function readSortAndGroup(visit: PlanVisit, uses: Map<string, RelationUse>): void {
  const node = visit.node;
  const type = nodeType(node);
  if (type === 'Sort' || type === 'Incremental Sort') {
    const limit = visit.ancestors.find((a) => nodeType(a) === 'Limit');
    const direct =
      limit !== undefined &&
      visit.ancestors
        .slice(0, visit.ancestors.indexOf(limit))
        .every((a) => nodeType(a).startsWith('Gather'));
    if (!direct || limit === undefined) return;
    const keys = planStrings(node, 'Sort Key').map(sortKey);
    if (keys.length === 0 || keys.some((k) => k === undefined)) return;
    const alias = keys[0]!.qualifier;
    if (keys.some((k) => k!.qualifier !== alias)) return;
    const use = uses.get(alias);
    if (use === undefined || use.sort !== undefined) return;
    use.sort = {
      columns: keys.map((k) => k!.column),
      order: keys.map((k) => k!.direction),
      limit,
    };
    for (const k of keys) use.needed.add(k!.column);
    return;
  }
  if (type === 'Aggregate') {
    const keys = planStrings(node, 'Group Key').map(sortKey);
    if (keys.length === 0 || keys.some((k) => k === undefined)) return;
    const alias = keys[0]!.qualifier;
    if (keys.some((k) => k!.qualifier !== alias)) return;
    const use = uses.get(alias);
    if (use !== undefined && use.group.length === 0) use.group = keys.map((k) => k!.column);
  }
}

/** Rows the planner expects a node to return. */
export function planRows(node: PlanNode): number {
  return planNumber(node, 'Plan Rows') ?? 0;
}

export function totalCost(node: PlanNode): number {
  return planNumber(node, 'Total Cost') ?? 0;
}
