// Rules judging how a node reads its rows (scans, estimates, heap visits); see plan-analyzer.ts.
import {
  columnList,
  count,
  type Draft,
  type FindingSeverity,
  parallelDivisor,
  percent,
  type Settings,
} from './finding.js';
import {
  actualTotalRows,
  childPlans,
  isAnalyzed,
  nodeType,
  type PlanNode,
  type PlanVisit,
  planNumber,
  planString,
  removedTotalRows,
} from './plan.js';
import { filterColumns } from './plan-expression.js';

export function seqScan(visit: PlanVisit, s: Settings): Draft | undefined {
  const node = visit.node;
  if (nodeType(node) !== 'Seq Scan') return undefined;
  const filter = planString(node, 'Filter');
  const relation = planString(node, 'Relation Name');
  if (filter === undefined || relation === undefined) return undefined;
  let kept: number | undefined;
  let scanned: number | undefined;
  const estimated = !isAnalyzed(node);
  if (!estimated) {
    kept = actualTotalRows(node);
    const removed = removedTotalRows(node, 'Rows Removed by Filter') ?? 0;
    scanned = kept === undefined ? undefined : kept + removed;
  } else {
    const tableRows = s.relationRows?.(relation, planString(node, 'Schema'));
    const planRows = planNumber(node, 'Plan Rows');
    if (typeof tableRows === 'number' && Number.isFinite(tableRows) && planRows !== undefined) {
      scanned = tableRows;
      kept = Math.min(tableRows, planRows * parallelDivisor(visit));
    }
  }
  if (kept === undefined || scanned === undefined || scanned < s.largeTableRows) return undefined;
  const removedFraction = scanned > 0 ? (scanned - kept) / scanned : 0;
  let severity: FindingSeverity;
  if (removedFraction > 0.9) severity = scanned >= s.hugeTableRows ? 'critical' : 'warning';
  else if (removedFraction > 0.5) severity = 'info';
  else return undefined;
  const columns = filterColumns(filter, planString(node, 'Alias'));
  const on = columns.length > 0 ? ` on ${columnList(columns)}` : '';
  const verb = estimated ? 'is expected to read' : 'read';
  const message =
    `Sequential scan of ${relation} ${verb} ${count(scanned)} rows and its filter${on} ` +
    `${estimated ? 'should discard' : 'discarded'} ${percent(removedFraction)} of them.`;
  let suggestion: string;
  if (columns.length === 0) {
    suggestion =
      'The filter is not on plain columns; an expression index matching it, or rewriting it ' +
      'so it compares a bare column, lets PostgreSQL read only the matching rows.';
  } else if (removedFraction > 0.9) {
    suggestion =
      `An index on ${relation} (${columnList(columns)}) would let PostgreSQL read only the ` +
      'matching rows.';
  } else {
    suggestion =
      'The filter keeps a large share of the table, so an index would rarely beat this scan; ' +
      'fetch fewer rows (a tighter predicate, pagination) if this query is slow.';
  }
  return {
    kind: 'seq-scan',
    severity,
    message,
    suggestion,
    ...(columns.length > 0 ? { columns } : {}),
    metrics: { rowsScanned: scanned, rowsKept: kept, removedFraction },
    estimated,
  };
}

const FILTERED_SCANS: ReadonlySet<string> = new Set([
  'Index Scan',
  'Index Only Scan',
  'Bitmap Heap Scan',
]);

export function rowsRemoved(visit: PlanVisit, s: Settings): Draft | undefined {
  const node = visit.node;
  if (!FILTERED_SCANS.has(nodeType(node))) return undefined;
  const filter = planString(node, 'Filter');
  const removed = removedTotalRows(node, 'Rows Removed by Filter');
  const kept = actualTotalRows(node);
  if (filter === undefined || removed === undefined || kept === undefined) return undefined;
  const read = removed + kept;
  if (read < s.largeTableRows / 10) return undefined;
  const removedFraction = read > 0 ? removed / read : 0;
  if (removedFraction <= 0.5) return undefined;
  const severity: FindingSeverity = removedFraction > 0.9 ? 'warning' : 'info';
  const columns = filterColumns(filter, planString(node, 'Alias'));
  const index = planString(node, 'Index Name');
  const via = index === undefined ? '' : ` via ${index}`;
  return {
    kind: 'rows-removed',
    severity,
    message:
      `${nodeType(node)}${via} fetched ${count(read)} rows and its filter discarded ` +
      `${percent(removedFraction)} of them.`,
    suggestion:
      columns.length > 0
        ? `Add the filtered columns (${columnList(columns)}) to the index, so the index itself ` +
          'selects the rows instead of the table fetch.'
        : 'Make the index match the filter so it selects the rows instead of the table fetch.',
    ...(columns.length > 0 ? { columns } : {}),
    metrics: { rowsRead: read, rowsRemoved: removed, removedFraction },
    estimated: false,
  };
}

export interface Estimate {
  readonly direction: 'under' | 'over';
  readonly factor: number;
  readonly bucket: number;
}

export function estimateOf(visit: PlanVisit, s: Settings): Estimate | undefined {
  const node = visit.node;
  const actual = planNumber(node, 'Actual Rows');
  const planned = planNumber(node, 'Plan Rows');
  const loops = planNumber(node, 'Actual Loops');
  if (actual === undefined || planned === undefined || loops === undefined || loops === 0) {
    return undefined;
  }
  if (Math.max(actual, planned) * loops < s.estimateMinRows) return undefined;
  // pev2 divides the larger by the smaller; a floor of one row keeps 0 from giving infinity.
  const a = Math.max(actual, 1);
  const p = Math.max(planned, 1);
  const direction = a > p ? 'under' : 'over';
  const factor = a > p ? a / p : p / a;
  if (direction === 'over' && stopsEarly(visit)) return undefined;
  const [info, warning, critical] = s.estimateFactors;
  const bucket = factor > critical ? 3 : factor > warning ? 2 : factor > info ? 1 : 0;
  return { direction, factor, bucket };
}

/** Under a LIMIT, an EXISTS-style subplan or a semi/anti join, a node may stop reading early. */
function stopsEarly(visit: PlanVisit): boolean {
  let child: PlanNode = visit.node;
  for (const ancestor of visit.ancestors) {
    const type = nodeType(ancestor);
    if (type === 'Limit') return true;
    const relationship = planString(child, 'Parent Relationship');
    if (relationship === 'SubPlan' || relationship === 'InitPlan') return true;
    const join = planString(ancestor, 'Join Type');
    if ((join === 'Semi' || join === 'Anti') && relationship === 'Inner') return true;
    if (type === 'Merge Join') return true;
    child = ancestor;
  }
  return false;
}

export function rowEstimate(
  visit: PlanVisit,
  estimates: Map<PlanNode, Estimate>,
): Draft | undefined {
  const estimate = estimates.get(visit.node);
  if (estimate === undefined || estimate.bucket === 0) return undefined;
  // Report where a misestimate starts or gets worse, not every node it propagates to.
  for (const child of childPlans(visit.node)) {
    const inherited = estimates.get(child);
    if (inherited?.direction === estimate.direction && inherited.bucket >= estimate.bucket) {
      return undefined;
    }
  }
  const node = visit.node;
  const severity: FindingSeverity =
    estimate.bucket === 3 ? 'critical' : estimate.bucket === 2 ? 'warning' : 'info';
  const relation = planString(node, 'Relation Name');
  const filter = planString(node, 'Filter') ?? planString(node, 'Index Cond');
  const columns = filter === undefined ? [] : filterColumns(filter, planString(node, 'Alias'));
  const what = relation === undefined ? nodeType(node) : `${nodeType(node)} on ${relation}`;
  const factor = estimate.factor >= 100 ? count(estimate.factor) : estimate.factor.toFixed(1);
  const suggestion =
    relation === undefined
      ? 'Row estimates this far off lead the planner to wrong join methods and orders; ' +
        'ANALYZE the tables below this node, and add extended statistics on correlated join ' +
        'or filter columns.'
      : `Run ANALYZE ${relation}; if the filter combines correlated columns, ` +
        `CREATE STATISTICS on them${columns.length > 1 ? ` (${columnList(columns)})` : ''}, ` +
        'or raise their statistics target.';
  return {
    kind: 'row-estimate',
    severity,
    message:
      `${what}: the planner ${estimate.direction}estimated the rows by ${factor}x ` +
      `(expected ${count(planNumber(node, 'Plan Rows') ?? 0)}, got ` +
      `${count(planNumber(node, 'Actual Rows') ?? 0)} per loop).`,
    suggestion,
    ...(columns.length > 0 ? { columns } : {}),
    metrics: {
      factor: estimate.factor,
      planRows: planNumber(node, 'Plan Rows') ?? 0,
      actualRows: planNumber(node, 'Actual Rows') ?? 0,
    },
    estimated: false,
  };
}

export function heapFetches(visit: PlanVisit): Draft | undefined {
  const node = visit.node;
  if (nodeType(node) !== 'Index Only Scan') return undefined;
  const fetches = planNumber(node, 'Heap Fetches');
  const rows = actualTotalRows(node);
  if (fetches === undefined || fetches <= 0 || rows === undefined) return undefined;
  // Heap Fetches is a total over all loops (checked on PostgreSQL 18), unlike Actual Rows.
  const returned = rows + (removedTotalRows(node, 'Rows Removed by Filter') ?? 0);
  const fraction = Math.min(1, fetches / Math.max(1, returned));
  // pev2: over 90% red, over 40% orange, any yellow; small counts stay informational.
  let severity: FindingSeverity = 'info';
  if (fetches >= 1000 && fraction > 0.9) severity = 'critical';
  else if (fetches >= 1000 && fraction > 0.4) severity = 'warning';
  const relation = planString(node, 'Relation Name') ?? 'the table';
  return {
    kind: 'heap-fetches',
    severity,
    message:
      `Index-only scan on ${relation} went to the table ${count(fetches)} times ` +
      `(${percent(fraction)} of its rows): the visibility map is out of date.`,
    suggestion: `VACUUM ${relation} (and tune its autovacuum) so index-only scans skip the table.`,
    metrics: { heapFetches: fetches, fraction },
    estimated: false,
  };
}

export function lossyBitmap(visit: PlanVisit): Draft | undefined {
  const node = visit.node;
  if (nodeType(node) !== 'Bitmap Heap Scan') return undefined;
  const lossy = planNumber(node, 'Lossy Heap Blocks') ?? 0;
  if (lossy <= 0) return undefined;
  const exact = planNumber(node, 'Exact Heap Blocks') ?? 0;
  const rechecked = removedTotalRows(node, 'Rows Removed by Index Recheck') ?? 0;
  return {
    kind: 'lossy-bitmap',
    severity: lossy > exact ? 'warning' : 'info',
    message:
      `Bitmap heap scan became lossy on ${count(lossy)} blocks and rechecked ` +
      `${count(rechecked)} rows.`,
    suggestion: 'Raise work_mem so the bitmap keeps exact row positions.',
    metrics: { lossyBlocks: lossy, exactBlocks: exact, rowsRechecked: rechecked },
    estimated: false,
  };
}
