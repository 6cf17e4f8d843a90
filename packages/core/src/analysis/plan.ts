import { PgPulseError } from '../errors/index.js';

/**
 * One node of `EXPLAIN (FORMAT JSON)` output, keyed exactly as PostgreSQL prints it so a plan
 * can be pasted unchanged into explain.dalibo.com (pev2) or any other viewer. Only the keys the
 * analyzer reads are named; PostgreSQL adds more with each release, hence the index signature.
 * Nothing here is trusted: readers below check every value's type before using it.
 */
export interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Parent Relationship'?: string;
  readonly 'Subplan Name'?: string;
  readonly 'Relation Name'?: string;
  readonly Schema?: string;
  readonly Alias?: string;
  readonly 'Index Name'?: string;
  readonly 'Join Type'?: string;
  readonly Strategy?: string;
  readonly Operation?: string;
  readonly 'Parallel Aware'?: boolean;
  readonly 'Startup Cost'?: number;
  readonly 'Total Cost'?: number;
  readonly 'Plan Rows'?: number;
  readonly 'Plan Width'?: number;
  readonly 'Actual Startup Time'?: number;
  readonly 'Actual Total Time'?: number;
  /** Per loop; fractional since PostgreSQL 18. */
  readonly 'Actual Rows'?: number;
  readonly 'Actual Loops'?: number;
  /** Per loop, like 'Actual Rows'. */
  readonly 'Rows Removed by Filter'?: number;
  readonly 'Rows Removed by Join Filter'?: number;
  readonly 'Rows Removed by Index Recheck'?: number;
  readonly Filter?: string;
  readonly 'Join Filter'?: string;
  readonly 'Index Cond'?: string;
  readonly 'Recheck Cond'?: string;
  readonly 'Hash Cond'?: string;
  readonly 'Merge Cond'?: string;
  readonly 'Sort Key'?: readonly string[];
  readonly 'Sort Method'?: string;
  /** 'Memory' or 'Disk'. */
  readonly 'Sort Space Type'?: string;
  /** kB. */
  readonly 'Sort Space Used'?: number;
  readonly 'Hash Buckets'?: number;
  readonly 'Hash Batches'?: number;
  readonly 'Original Hash Batches'?: number;
  readonly 'HashAgg Batches'?: number;
  /** kB written to temporary files by a spilling HashAggregate. */
  readonly 'Disk Usage'?: number;
  readonly 'Peak Memory Usage'?: number;
  readonly 'Heap Fetches'?: number;
  readonly 'Lossy Heap Blocks'?: number;
  readonly 'Exact Heap Blocks'?: number;
  readonly 'Workers Planned'?: number;
  readonly 'Workers Launched'?: number;
  readonly 'Cache Hits'?: number;
  readonly 'Cache Misses'?: number;
  readonly Plans?: readonly PlanNode[];
  readonly [key: string]: unknown;
}

/** One element of the top-level array `EXPLAIN (FORMAT JSON)` returns. */
export interface ExplainResult {
  readonly Plan: PlanNode;
  readonly 'Planning Time'?: number;
  readonly 'Execution Time'?: number;
  readonly [key: string]: unknown;
}

export type JsonRecord = { readonly [key: string]: unknown };

export function isJsonRecord(value: unknown): value is JsonRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function formatError(detail: string): PgPulseError {
  return new PgPulseError(
    'PGPULSE_EXPLAIN_FORMAT',
    `Not the output of EXPLAIN (FORMAT JSON): ${detail}. Pass the rows pg returned for ` +
      "EXPLAIN (FORMAT JSON) ..., e.g. [{ 'QUERY PLAN': [{ Plan: {...} }] }].",
  );
}

function fromJsonText(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    throw formatError('a string that is not JSON');
  }
}

/**
 * Reads what pg returns for `EXPLAIN (FORMAT JSON) ...`: `[{ 'QUERY PLAN': [{ Plan }] }]`,
 * where 'QUERY PLAN' is parsed JSON, or JSON text when the json type parser was overridden.
 * Also accepts the inner array or a single `{ Plan }` object, so a plan saved elsewhere (a
 * fixture, a span event) reads the same way. Throws a PgPulseError for anything else.
 */
export function parseExplainJson(rows: unknown): ExplainResult {
  let value = fromJsonText(rows);
  if (Array.isArray(value)) {
    const first: unknown = value[0];
    if (first === undefined) throw formatError('no rows');
    value = isJsonRecord(first) && 'QUERY PLAN' in first ? first['QUERY PLAN'] : value;
  }
  value = fromJsonText(value);
  if (Array.isArray(value)) value = value[0];
  if (!isJsonRecord(value)) throw formatError('no plan object');
  const plan = value.Plan;
  if (!isJsonRecord(plan) || typeof plan['Node Type'] !== 'string') {
    throw formatError("no 'Plan' with a 'Node Type'");
  }
  return value as ExplainResult;
}

// ---------------------------------------------------------------------------------------------
// Defensive readers: a node may come from any JSON, so each reader checks the value's type.

export function planNumber(node: JsonRecord, key: string): number | undefined {
  const value = node[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function planString(node: JsonRecord, key: string): string | undefined {
  const value = node[key];
  return typeof value === 'string' ? value : undefined;
}

export function planStrings(node: JsonRecord, key: string): readonly string[] {
  const value = node[key];
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is string => typeof item === 'string');
}

export function nodeType(node: JsonRecord): string {
  return planString(node, 'Node Type') ?? 'Unknown';
}

export function childPlans(node: JsonRecord): readonly PlanNode[] {
  const plans = node.Plans;
  if (!Array.isArray(plans)) return [];
  return plans.filter((child): child is PlanNode => isJsonRecord(child));
}

/** True when the plan carries EXPLAIN ANALYZE figures (a node that never ran has 0 loops). */
export function isAnalyzed(node: JsonRecord): boolean {
  return planNumber(node, 'Actual Loops') !== undefined;
}

/** Rows a node produced over all its loops; undefined without ANALYZE. */
export function actualTotalRows(node: JsonRecord): number | undefined {
  const rows = planNumber(node, 'Actual Rows');
  const loops = planNumber(node, 'Actual Loops');
  if (rows === undefined || loops === undefined) return undefined;
  return rows * loops;
}

/** A Filter's removed rows over all loops (PostgreSQL prints the per-loop average). */
export function removedTotalRows(node: JsonRecord, key: string): number | undefined {
  const removed = planNumber(node, key);
  if (removed === undefined) return undefined;
  return removed * Math.max(1, planNumber(node, 'Actual Loops') ?? 1);
}

// ---------------------------------------------------------------------------------------------
// Walking

export interface PlanVisit {
  readonly node: PlanNode;
  /** JSONPath-like location from the root node, e.g. `$.Plans[0].Plans[1]`. */
  readonly path: string;
  readonly depth: number;
  /** Nearest first: `ancestors[0]` is the parent. */
  readonly ancestors: readonly PlanNode[];
}

/** Deeper trees are not plans PostgreSQL produces; stopping keeps hostile input harmless. */
export const MAX_PLAN_DEPTH = 256;
/** Same reasoning for width: a plan with more nodes than this is not walked further. */
export const MAX_PLAN_NODES = 10_000;

/**
 * Visits every node depth-first, parents before children. Accepts a PlanNode or a whole
 * ExplainResult. Children that are not objects are skipped, cycles and absurd sizes are cut.
 */
export function walkPlan(root: PlanNode | ExplainResult, visit: (v: PlanVisit) => void): void {
  const start = isJsonRecord(root.Plan) ? (root.Plan as PlanNode) : (root as PlanNode);
  const seen = new Set<object>();
  const stack: PlanVisit[] = [{ node: start, path: '$', depth: 0, ancestors: [] }];
  while (stack.length > 0 && seen.size < MAX_PLAN_NODES) {
    const current = stack.pop()!;
    if (seen.has(current.node)) continue;
    seen.add(current.node);
    visit(current);
    if (current.depth >= MAX_PLAN_DEPTH) continue;
    const children = Array.isArray(current.node.Plans) ? current.node.Plans : [];
    const ancestors = [current.node, ...current.ancestors];
    // Pushed in reverse so the first child is visited first.
    for (let i = children.length - 1; i >= 0; i--) {
      const child: unknown = children[i];
      if (!isJsonRecord(child)) continue;
      stack.push({
        node: child as PlanNode,
        path: `${current.path}.Plans[${i}]`,
        depth: current.depth + 1,
        ancestors,
      });
    }
  }
}

/** Every node of the plan as a flat list, in walk order. */
export function flattenPlan(root: PlanNode | ExplainResult): PlanVisit[] {
  const visits: PlanVisit[] = [];
  walkPlan(root, (v) => visits.push(v));
  return visits;
}

export interface PlanRelation {
  readonly relation: string;
  /** Only when the plan names it (EXPLAIN VERBOSE). */
  readonly schema?: string;
}

/** The distinct relations a plan reads, at most `max` of them, in plan order. */
export function planRelations(root: PlanNode | ExplainResult, max = 32): PlanRelation[] {
  const seen = new Map<string, PlanRelation>();
  for (const { node } of flattenPlan(root)) {
    if (seen.size >= max) break;
    const relation = planString(node, 'Relation Name');
    if (relation === undefined) continue;
    const schema = planString(node, 'Schema');
    seen.set(
      JSON.stringify([schema, relation]),
      schema === undefined ? { relation } : { relation, schema },
    );
  }
  return [...seen.values()];
}
