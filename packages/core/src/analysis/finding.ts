// The shape of a plan finding, the analyzer's settings, and helpers the rule files share.
import { type JsonRecord, nodeType, type PlanVisit, planNumber, planString } from './plan.js';

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

export interface Settings {
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

export function settings(options: PlanAnalyzerOptions): Settings {
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

export const SEVERITY_RANK: Readonly<Record<FindingSeverity, number>> = {
  info: 0,
  warning: 1,
  critical: 2,
};

export const count = (n: number): string => Math.round(n).toLocaleString('en-US');
export const percent = (f: number): string =>
  f >= 0.9999 ? '>99.99%' : `${(Math.floor(f * 10_000) / 100).toString()}%`;

export function columnList(columns: readonly string[]): string {
  return columns.map((c) => (/^[a-z_][a-z0-9_$]*$/.test(c) ? c : JSON.stringify(c))).join(', ');
}

/** What a rule reports; relation fields default to the judged node's own. */
export type Draft = Omit<PlanFinding, 'nodeType' | 'path'>;

export function relationOf(node: JsonRecord): Pick<PlanFinding, 'relation' | 'schema' | 'alias'> {
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
export function parallelDivisor(visit: PlanVisit): number {
  if (visit.node['Parallel Aware'] !== true) return 1;
  const gather = visit.ancestors.find((a) => /^Gather/.test(nodeType(a)));
  const workers = gather === undefined ? undefined : planNumber(gather, 'Workers Planned');
  if (workers === undefined) return 1;
  // PostgreSQL's get_parallel_divisor with parallel_leader_participation on.
  return workers + Math.max(0, 1 - 0.3 * workers);
}
