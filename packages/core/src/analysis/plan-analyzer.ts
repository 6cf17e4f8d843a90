import {
  type Draft,
  type FindingSeverity,
  type PlanAnalyzerOptions,
  type PlanFinding,
  relationOf,
  SEVERITY_RANK,
  settings,
} from './finding.js';
import { diskHash, diskSort, nestedLoop, sortUnderLimit } from './operator-rules.js';
import {
  type ExplainResult,
  flattenPlan,
  isJsonRecord,
  nodeType,
  type PlanNode,
  type PlanVisit,
} from './plan.js';
import {
  type Estimate,
  estimateOf,
  heapFetches,
  lossyBitmap,
  rowEstimate,
  rowsRemoved,
  seqScan,
} from './scan-rules.js';

export type {
  FindingSeverity,
  PlanAnalyzerOptions,
  PlanFinding,
  PlanFindingKind,
} from './finding.js';

/**
 * Flags the problems pev2 (dalibo) colours in a plan, each with a severity and a suggestion.
 * Works on a plain EXPLAIN (estimates; give `relationRows` to judge sequential scans) and on
 * EXPLAIN ANALYZE (actual figures win when present). Never throws: a node it cannot read is
 * skipped, whatever its shape.
 */
export function analyzePlan(
  plan: PlanNode | ExplainResult,
  options: PlanAnalyzerOptions = {},
): PlanFinding[] {
  if (!isJsonRecord(plan)) return [];
  const s = settings(isJsonRecord(options) ? options : {});
  let visits: PlanVisit[];
  try {
    visits = flattenPlan(plan);
  } catch {
    return [];
  }
  const estimates = new Map<PlanNode, Estimate>();
  for (const visit of visits) {
    try {
      const estimate = estimateOf(visit, s);
      if (estimate !== undefined) estimates.set(visit.node, estimate);
    } catch {
      // An unreadable node contributes nothing.
    }
  }
  const findings: PlanFinding[] = [];
  for (const visit of visits) {
    const rules: (() => Draft | undefined)[] = [
      () => seqScan(visit, s),
      () => rowsRemoved(visit, s),
      () => rowEstimate(visit, estimates),
      () => diskSort(visit),
      () => diskHash(visit),
      () => nestedLoop(visit, s),
      () => sortUnderLimit(visit, s),
      () => heapFetches(visit),
      () => lossyBitmap(visit),
    ];
    for (const rule of rules) {
      let draft: Draft | undefined;
      try {
        draft = rule();
      } catch {
        draft = undefined;
      }
      if (draft === undefined) continue;
      findings.push({
        ...relationOf(visit.node),
        ...draft,
        nodeType: nodeType(visit.node),
        path: visit.path,
      });
    }
  }
  // Stable: equal severities keep plan order.
  findings.sort((a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity]);
  return findings.slice(0, s.maxFindings);
}

/** The most severe level among findings, or undefined when there are none. */
export function worstSeverity(findings: readonly PlanFinding[]): FindingSeverity | undefined {
  let worst: FindingSeverity | undefined;
  for (const f of findings) {
    if (worst === undefined || SEVERITY_RANK[f.severity] > SEVERITY_RANK[worst]) worst = f.severity;
  }
  return worst;
}
