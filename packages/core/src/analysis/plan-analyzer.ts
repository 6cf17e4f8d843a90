import {
  actualTotalRows,
  childPlans,
  type ExplainResult,
  flattenPlan,
  isAnalyzed,
  isJsonRecord,
  type JsonRecord,
  nodeType,
  type PlanNode,
  type PlanVisit,
  planNumber,
  planString,
  planStrings,
  removedTotalRows,
} from './plan.js';
import { filterColumns, sortKeyColumn } from './plan-expression.js';

export type PlanFindingKind =
  | 'seq-scan'
  | 'rows-removed'
  | 'row-estimate'
  | 'disk-sort'
  | 'disk-hash'
  | 'nested-loop'
  | 'sort-under-limit'
  | 'heap-fetches'
  | 'lossy-bitmap';

export type FindingSeverity = 'info' | 'warning' | 'critical';

/**
 * One problem in a plan. Messages name relations, columns and row counts only: never a
 * literal from a Filter, which may carry a parameter value (invariant 6).
 */
export interface PlanFinding {
  readonly kind: PlanFindingKind;
  readonly severity: FindingSeverity;
  readonly message: string;
  readonly suggestion: string;
  readonly relation?: string;
  /** Only when the plan names it (EXPLAIN VERBOSE); otherwise search_path decides. */
  readonly schema?: string;
  readonly alias?: string;
  /** Best effort, from the node's expression text (see plan-expression.ts). */
  readonly columns?: readonly string[];
  /** For sort findings: each column's direction, parallel to `columns`. */
  readonly order?: readonly ('asc' | 'desc')[];
  readonly nodeType: string;
  /** Location of the node, e.g. `$.Plans[0]`. */
  readonly path: string;
  /** The figures the rule judged, e.g. `{ rowsScanned, removedFraction }`. */
  readonly metrics: Readonly<Record<string, number>>;
  /** True when the figures come from planner estimates rather than EXPLAIN ANALYZE. */
  readonly estimated: boolean;
}

export interface PlanAnalyzerOptions {
  /**
   * Rows in a relation (pg_class.reltuples), needed to judge a sequential scan from a plain
   * EXPLAIN, which has no actual row counts. Without it only ANALYZE plans yield seq-scan
   * findings.
   */
  readonly relationRows?: (relation: string, schema?: string) => number | undefined;
  /** A scan reading fewer rows than this is never worth a finding. Default 10 000. */
  readonly largeTableRows?: number;
  /** A selective scan reading at least this many rows is critical. Default 100 000. */
  readonly hugeTableRows?: number;
  /** Misestimate factors for info / warning / critical, as pev2 colours them. Default 10/100/1000. */
  readonly estimateFactors?: readonly [number, number, number];
  /** Misestimates on nodes handling fewer rows than this are ignored. Default 100. */
  readonly estimateMinRows?: number;
  /** Inner-side executions from which a nested loop is judged. Default 1000. */
  readonly nestedLoopLoops?: number;
  /** Rows sorted under a LIMIT from which the sort is judged. Default 10 000. */
  readonly sortUnderLimitRows?: number;
  /** At most this many findings, the most severe first. Default 50. */
  readonly maxFindings?: number;
}

interface Settings {
  readonly relationRows: ((relation: string, schema?: string) => number | undefined) | undefined;
  readonly largeTableRows: number;
  readonly hugeTableRows: number;
  readonly estimateFactors: readonly [number, number, number];
  readonly estimateMinRows: number;
  readonly nestedLoopLoops: number;
  readonly sortUnderLimitRows: number;
  readonly maxFindings: number;
}

function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

function settings(options: PlanAnalyzerOptions): Settings {
  const factors = options.estimateFactors;
  return {
    relationRows: typeof options.relationRows === 'function' ? options.relationRows : undefined,
    largeTableRows: positive(options.largeTableRows, 10_000),
    hugeTableRows: positive(options.hugeTableRows, 100_000),
    estimateFactors:
      Array.isArray(factors) && factors.length === 3 ? factors : ([10, 100, 1000] as const),
    estimateMinRows: positive(options.estimateMinRows, 100),
    nestedLoopLoops: positive(options.nestedLoopLoops, 1000),
    sortUnderLimitRows: positive(options.sortUnderLimitRows, 10_000),
    maxFindings: positive(options.maxFindings, 50),
  };
}

const SEVERITY_RANK: Readonly<Record<FindingSeverity, number>> = {
  info: 0,
  warning: 1,
  critical: 2,
};

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const percent = (f: number): string =>
  f >= 0.9999 ? '>99.99%' : `${(Math.floor(f * 10_000) / 100).toString()}%`;

function columnList(columns: readonly string[]): string {
  return columns.map((c) => (/^[a-z_][a-z0-9_$]*$/.test(c) ? c : JSON.stringify(c))).join(', ');
}

/** What a rule reports; relation fields default to the judged node's own. */
type Draft = Omit<PlanFinding, 'nodeType' | 'path'>;

function relationOf(node: JsonRecord): Pick<PlanFinding, 'relation' | 'schema' | 'alias'> {
  const relation = planString(node, 'Relation Name');
  if (relation === undefined) return {};
  const schema = planString(node, 'Schema');
  const alias = planString(node, 'Alias');
  return {
    relation,
    ...(schema === undefined ? {} : { schema }),
    ...(alias === undefined || alias === relation ? {} : { alias }),
  };
}

/** The rows the planner expected all processes of a parallel node to produce together. */
function parallelDivisor(visit: PlanVisit): number {
  if (visit.node['Parallel Aware'] !== true) return 1;
  const gather = visit.ancestors.find((a) => /^Gather/.test(nodeType(a)));
  const workers = gather === undefined ? undefined : planNumber(gather, 'Workers Planned');
  if (workers === undefined) return 1;
  // PostgreSQL's get_parallel_divisor with parallel_leader_participation on.
  return workers + Math.max(0, 1 - 0.3 * workers);
}

// ---------------------------------------------------------------------------------------------
// Rules

function seqScan(visit: PlanVisit, s: Settings): Draft | undefined {
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

function rowsRemoved(visit: PlanVisit, s: Settings): Draft | undefined {
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

interface Estimate {
  readonly direction: 'under' | 'over';
  readonly factor: number;
  readonly bucket: number;
}

function estimateOf(visit: PlanVisit, s: Settings): Estimate | undefined {
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

function rowEstimate(visit: PlanVisit, estimates: Map<PlanNode, Estimate>): Draft | undefined {
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

function spilledToDisk(node: JsonRecord): boolean {
  if (planString(node, 'Sort Space Type') === 'Disk') return true;
  if (planString(node, 'Sort Method')?.startsWith('external') === true) return true;
  for (const key of ['Full-sort Groups', 'Pre-sorted Groups']) {
    const groups = node[key];
    if (isJsonRecord(groups) && isJsonRecord(groups['Sort Space Disk'])) return true;
  }
  const workers = node.Workers;
  return Array.isArray(workers) && workers.some((w) => isJsonRecord(w) && spilledToDisk(w));
}

interface SortColumns {
  readonly columns: string[];
  readonly order: ('asc' | 'desc')[];
}

/** The leading plain columns of a Sort Key; stops at the first expression. */
function sortColumns(node: JsonRecord): SortColumns {
  const columns: string[] = [];
  const order: ('asc' | 'desc')[] = [];
  for (const key of planStrings(node, 'Sort Key')) {
    const column = sortKeyColumn(key);
    if (column === undefined) break;
    columns.push(column.name);
    order.push(column.descending ? 'desc' : 'asc');
  }
  return { columns, order };
}

function sortList({ columns, order }: SortColumns): string {
  return columns
    .map((c, i) => `${columnList([c])}${order[i] === 'desc' ? ' DESC' : ''}`)
    .join(', ');
}

function sortFields(sort: SortColumns): Pick<PlanFinding, 'columns' | 'order'> {
  return sort.columns.length > 0 ? { columns: sort.columns, order: sort.order } : {};
}

/** The relation a subtree reads, when it reads exactly one. */
function singleRelation(node: PlanNode): JsonRecord | undefined {
  const scans = flattenPlan(node).filter((v) => planString(v.node, 'Relation Name') !== undefined);
  const names = new Set(scans.map((v) => planString(v.node, 'Relation Name')));
  return names.size === 1 ? scans[0]?.node : undefined;
}

function diskSort(visit: PlanVisit): Draft | undefined {
  const node = visit.node;
  if (!/Sort$/.test(nodeType(node)) || !spilledToDisk(node)) return undefined;
  const usedKb = planNumber(node, 'Sort Space Used') ?? 0;
  const sort = sortColumns(node);
  const size = usedKb > 0 ? ` ${count(usedKb)} kB` : '';
  const memory = usedKb > 0 ? ` to about ${count(Math.ceil((usedKb * 2) / 1024))} MB` : '';
  return {
    kind: 'disk-sort',
    severity: usedKb >= 1_048_576 ? 'critical' : 'warning',
    message: `Sort spilled${size} to disk (${planString(node, 'Sort Method') ?? 'external'}).`,
    suggestion:
      `Raise work_mem${memory} for this query (SET LOCAL work_mem inside its transaction)` +
      (sort.columns.length > 0
        ? `, or add an index on (${sortList(sort)}) so rows come out already sorted.`
        : '.'),
    ...sortFields(sort),
    metrics: { sortSpaceKb: usedKb },
    estimated: false,
  };
}

function diskHash(visit: PlanVisit): Draft | undefined {
  const node = visit.node;
  const type = nodeType(node);
  const peakKb = planNumber(node, 'Peak Memory Usage') ?? 0;
  if (type === 'Hash') {
    const batches = planNumber(node, 'Hash Batches') ?? 1;
    if (batches <= 1) return undefined;
    const original = planNumber(node, 'Original Hash Batches') ?? batches;
    const grew =
      original < batches
        ? ` (planned ${count(original)}: the planner underestimated the hashed rows)`
        : '';
    return {
      kind: 'disk-hash',
      severity: 'warning',
      message: `Hash split into ${count(batches)} batches written to disk${grew}.`,
      suggestion:
        `Raise work_mem (or hash_mem_multiplier) to about ` +
        `${count(Math.ceil((peakKb * batches) / 1024) + 1)} MB for this query so the hash ` +
        'fits in one batch.',
      metrics: { batches, originalBatches: original, peakMemoryKb: peakKb },
      estimated: false,
    };
  }
  const aggBatches = planNumber(node, 'HashAgg Batches') ?? 0;
  const diskKb = planNumber(node, 'Disk Usage') ?? 0;
  if (type !== 'Aggregate' || (aggBatches <= 1 && diskKb <= 0)) return undefined;
  return {
    kind: 'disk-hash',
    severity: 'warning',
    message: `Hash aggregate spilled ${count(diskKb)} kB to disk in ${count(aggBatches)} batches.`,
    suggestion:
      `Raise work_mem (or hash_mem_multiplier) to about ` +
      `${count(Math.ceil((peakKb + diskKb) / 1024) + 1)} MB for this query.`,
    metrics: { batches: aggBatches, diskKb, peakMemoryKb: peakKb },
    estimated: false,
  };
}

/** The node a nested loop runs per outer row, seen through caches. */
function innerSide(node: PlanNode): { inner: PlanNode; scan: PlanNode } | undefined {
  const children = childPlans(node);
  const inner =
    children.find((c) => planString(c, 'Parent Relationship') === 'Inner') ?? children[1];
  if (inner === undefined) return undefined;
  let scan = inner;
  while (/^(Memoize|Materialize)$/.test(nodeType(scan))) {
    const next = childPlans(scan)[0];
    if (next === undefined) break;
    scan = next;
  }
  return { inner, scan };
}

function nestedLoop(visit: PlanVisit, s: Settings): Draft | undefined {
  const node = visit.node;
  if (nodeType(node) !== 'Nested Loop') return undefined;
  const sides = innerSide(node);
  const outer = childPlans(node).find((c) => c !== sides?.inner);
  if (sides === undefined || outer === undefined) return undefined;
  const { inner, scan } = sides;
  const estimated = !isAnalyzed(inner);
  let loops: number | undefined;
  if (!estimated) {
    loops = planNumber(inner, 'Actual Loops');
    // A Memoize cache hit does not run the inner plan.
    const misses = planNumber(inner, 'Cache Misses');
    if (nodeType(inner) === 'Memoize' && misses !== undefined) loops = misses;
  } else {
    loops = planNumber(outer, 'Plan Rows');
  }
  if (loops === undefined || loops < s.nestedLoopLoops) return undefined;
  const scanType = nodeType(scan);
  const quadratic = scanType === 'Seq Scan' || nodeType(inner) === 'Materialize';
  let severity: FindingSeverity;
  if (quadratic) severity = 'critical';
  else if (loops >= s.nestedLoopLoops * 100) severity = 'warning';
  else return undefined;
  const relation = planString(scan, 'Relation Name');
  const joinFilter = planString(node, 'Join Filter') ?? planString(scan, 'Filter');
  const columns =
    joinFilter === undefined || relation === undefined
      ? []
      : filterColumns(joinFilter, planString(scan, 'Alias'));
  const target = relation === undefined ? scanType : `${scanType} on ${relation}`;
  return {
    ...relationOf(scan),
    kind: 'nested-loop',
    severity,
    message:
      `Nested loop ${estimated ? 'is expected to run' : 'ran'} its inner side (${target}) ` +
      `${count(loops)} times${quadratic ? ', re-reading it in full each time' : ''}.`,
    suggestion: quadratic
      ? relation !== undefined && columns.length > 0
        ? `Index ${relation} (${columnList(columns)}) so each loop is an index lookup, or let ` +
          'a hash join run (check the row estimates of the outer side).'
        : 'Give the join an indexable equality condition, or let a hash join run (check the ' +
          'row estimates of the outer side).'
      : 'So many index lookups are often slower than one hash join; check the row estimate ' +
        'of the outer side, which is what made the planner choose a nested loop.',
    ...(columns.length > 0 ? { columns } : {}),
    metrics: { loops },
    estimated,
  };
}

function sortUnderLimit(visit: PlanVisit, s: Settings): Draft | undefined {
  const node = visit.node;
  if (nodeType(node) !== 'Limit') return undefined;
  let sort = childPlans(node)[0];
  const gather = sort !== undefined && nodeType(sort) === 'Gather Merge' ? sort : undefined;
  if (gather !== undefined) sort = childPlans(gather)[0];
  if (sort === undefined || nodeType(sort) !== 'Sort') return undefined;
  const input = childPlans(sort)[0];
  if (input === undefined) return undefined;
  const estimated = !isAnalyzed(input);
  const ancestors = gather === undefined ? [sort] : [sort, gather];
  const sorted = estimated
    ? (planNumber(input, 'Plan Rows') ?? 0) *
      parallelDivisor({ node: input, path: '', depth: 0, ancestors })
    : (actualTotalRows(input) ?? 0);
  const limit = estimated
    ? (planNumber(node, 'Plan Rows') ?? 0)
    : (planNumber(node, 'Actual Rows') ?? 0);
  if (sorted < s.sortUnderLimitRows || limit * 100 > sorted) return undefined;
  const keys = sortColumns(sort);
  const scan = singleRelation(input);
  const relation = scan === undefined ? undefined : planString(scan, 'Relation Name');
  const onRelation = relation === undefined ? '' : `${relation} `;
  return {
    ...(scan === undefined ? {} : relationOf(scan)),
    kind: 'sort-under-limit',
    severity: sorted >= s.hugeTableRows * 10 ? 'critical' : 'warning',
    message:
      `${estimated ? 'Expected to sort' : 'Sorted'} ${count(sorted)} rows to return the first ` +
      `${count(limit)}.`,
    suggestion:
      keys.columns.length > 0
        ? `An index on ${onRelation}(${sortList(keys)}) matching the ORDER BY lets the ` +
          'LIMIT stop after reading only the rows it returns.'
        : 'An index matching the ORDER BY lets the LIMIT stop after reading only the rows it returns.',
    ...sortFields(keys),
    metrics: { rowsSorted: sorted, limit },
    estimated,
  };
}

function heapFetches(visit: PlanVisit): Draft | undefined {
  const node = visit.node;
  if (nodeType(node) !== 'Index Only Scan') return undefined;
  const fetches = planNumber(node, 'Heap Fetches');
  const rows = actualTotalRows(node);
  if (fetches === undefined || fetches <= 0 || rows === undefined) return undefined;
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

function lossyBitmap(visit: PlanVisit): Draft | undefined {
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

// ---------------------------------------------------------------------------------------------

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
