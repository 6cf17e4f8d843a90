import type { ExplainResult } from './plan.js';
import { redactExpression } from './plan-expression.js';

/** Keys whose strings are names or fixed vocabulary, never a value from the statement. */
const VERBATIM_KEYS: ReadonlySet<string> = new Set([
  'Node Type',
  'Parent Relationship',
  'Subplan Name',
  'Relation Name',
  'Schema',
  'Alias',
  'Index Name',
  'Join Type',
  'Strategy',
  'Operation',
  'Sort Method',
  'Sort Methods Used',
  'Sort Space Type',
  'Scan Direction',
  'Partial Mode',
  'CTE Name',
  'Function Name',
  'Cache Mode',
  'Command',
  'Constraint Name',
  'Trigger Name',
  'Relation',
  'Conflict Resolution',
  'Conflict Arbiter Indexes',
  'Custom Plan Provider',
  'Storage',
  'Settings',
]);

/** Texts a plan may carry whole; dropped rather than masked. */
const DROPPED_KEYS: ReadonlySet<string> = new Set(['Query Text']);
const MAX_DEPTH = 300;

function redactValue(value: unknown, verbatim: boolean, depth: number): unknown {
  if (depth > MAX_DEPTH) return null;
  if (typeof value === 'string') return verbatim ? value : redactExpression(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, verbatim, depth + 1));
  if (typeof value !== 'object' || value === null) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (DROPPED_KEYS.has(key)) continue;
    copy[key] = redactValue(child, verbatim || VERBATIM_KEYS.has(key), depth + 1);
  }
  return copy;
}

/**
 * A copy of the plan with every literal in its expressions masked (`'?'`, `?`). EXPLAIN
 * prints bound parameter values and SQL literals inside Filter, Index Cond and similar texts,
 * so a plan leaving pgpulse (span events, reports) goes through this first (invariant 6).
 * Names, costs, row counts and timings are kept, so the analyzer reads the copy just as well.
 */
export function redactPlan(result: ExplainResult): ExplainResult {
  return redactValue(result, false, 0) as ExplainResult;
}
