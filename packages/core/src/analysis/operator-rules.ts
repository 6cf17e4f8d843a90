// Rules judging what a node does with rows (sorting, hashing, joining, limiting); see plan-analyzer.ts.
import {
  columnList,
  count,
  type Draft,
  type FindingSeverity,
  type PlanFinding,
  parallelDivisor,
  relationOf,
  type Settings,
} from './finding.js';
import {
  actualTotalRows,
  childPlans,
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
} from './plan.js';
import { filterColumns, sortKeyColumn } from './plan-expression.js';

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

export function diskSort(visit: PlanVisit): Draft | undefined {
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

export function diskHash(visit: PlanVisit): Draft | undefined {
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

export function nestedLoop(visit: PlanVisit, s: Settings): Draft | undefined {
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

export function sortUnderLimit(visit: PlanVisit, s: Settings): Draft | undefined {
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
