import { parseSync } from 'libpg-query';
import { type Classifier, createClassifier } from '../routing/index.js';
import { arrayField, isParserLoaded, isRecord, unwrapNode } from '../sql/index.js';

/** Statements EXPLAIN accepts and that are worth a plan. */
const EXPLAINABLE: ReadonlySet<string> = new Set([
  'SelectStmt',
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
]);

export interface StatementShape {
  /** False for DDL, utility and multi-statement texts, EXPLAIN itself, or unparseable text. */
  readonly explainable: boolean;
  readonly reason?: 'unparseable' | 'multi-statement' | 'not-explainable' | 'parser-not-loaded';
  /** Highest `$n` the text uses; 0 when it has none. */
  readonly paramCount: number;
  /**
   * 'read' only when the classifier proves the text read-only (invariant 1); everything else,
   * including what it cannot judge, is 'write'.
   */
  readonly kind: 'read' | 'write';
  /** Functions a read calls, for the catalog volatility check. */
  readonly functions: readonly string[];
}

let sharedClassifier: Classifier | undefined;

function highestParam(value: unknown, depth = 0): number {
  if (depth > 200 || typeof value !== 'object' || value === null) return 0;
  if (Array.isArray(value)) {
    let max = 0;
    for (const item of value) max = Math.max(max, highestParam(item, depth + 1));
    return max;
  }
  let max = 0;
  for (const [key, child] of Object.entries(value)) {
    if (key === 'ParamRef' && isRecord(child) && typeof child.number === 'number') {
      max = Math.max(max, child.number);
    } else {
      max = Math.max(max, highestParam(child, depth + 1));
    }
  }
  return max;
}

/** What EXPLAIN can do with a statement text. Needs the parser loaded; never throws. */
export function inspectStatement(sql: string, classifier?: Classifier): StatementShape {
  const none = { paramCount: 0, kind: 'write', functions: [] } as const;
  if (!isParserLoaded()) return { ...none, explainable: false, reason: 'parser-not-loaded' };
  if (typeof sql !== 'string' || sql.includes('\0')) {
    return { ...none, explainable: false, reason: 'unparseable' };
  }
  let stmts: readonly unknown[] | undefined;
  try {
    const parsed: unknown = parseSync(sql);
    stmts = isRecord(parsed) ? arrayField(parsed, 'stmts') : undefined;
  } catch {
    return { ...none, explainable: false, reason: 'unparseable' };
  }
  if (stmts === undefined || stmts.length !== 1) {
    return { ...none, explainable: false, reason: stmts ? 'multi-statement' : 'unparseable' };
  }
  const first = stmts[0];
  const node = isRecord(first) ? unwrapNode(first.stmt) : undefined;
  if (node === undefined || !EXPLAINABLE.has(node.type)) {
    return { ...none, explainable: false, reason: 'not-explainable' };
  }
  sharedClassifier ??= createClassifier();
  let kind: 'read' | 'write' = 'write';
  let functions: readonly string[] = [];
  try {
    const classification = (classifier ?? sharedClassifier).classify(sql);
    kind = classification.kind;
    functions = classification.functions;
  } catch {
    kind = 'write';
  }
  return { explainable: true, paramCount: highestParam(node.body), kind, functions };
}
