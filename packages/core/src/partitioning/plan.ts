import { type ChildInfo, parseHashBound, parseListBound } from './inspect.js';
import { partitionName, quoteLiteral } from './sql.js';
import type {
  ResolvedHashStrategy,
  ResolvedListStrategy,
  ResolvedRangeStrategy,
} from './strategy.js';
import {
  addPeriods,
  boundLiteral,
  periodStart,
  periodSuffix,
  retentionCutoff,
  type TimeKeyType,
} from './time.js';

/**
 * What a maintenance run should do, decided from the strategy, the partitions the catalog
 * lists and the clock: pure functions, so the decisions are testable without a database.
 */

export interface WantedPartition {
  readonly name: string;
  /** The bound clause as it goes into `ATTACH PARTITION ... <clause>`. */
  readonly clause: string;
}

export interface PlanConflict {
  readonly name: string;
  readonly clause: string;
  /** Existing partitions the wanted one overlaps. */
  readonly overlaps: readonly string[];
}

export interface Plan {
  readonly create: readonly WantedPartition[];
  readonly conflicts: readonly PlanConflict[];
  /** Partitions to detach (and drop), oldest first. */
  readonly retire: readonly ChildInfo[];
  /** Existing partitions that do not fit the strategy (e.g. another hash modulus). */
  readonly mismatches: readonly string[];
}

export const DEFAULT_SUFFIX = 'default';

export function rangeClause(from: Date, to: Date, keyType: TimeKeyType): string {
  return `FOR VALUES FROM (${boundLiteral(from, keyType)}) TO (${boundLiteral(to, keyType)})`;
}

/**
 * The current period and `premake` after it, minus those already covered; with retention,
 * every partition whose upper bound is at or before `now - olderThan` (never the DEFAULT one,
 * never one without a finite upper bound).
 */
export function planRange(
  strategy: ResolvedRangeStrategy,
  keyType: TimeKeyType,
  children: readonly ChildInfo[],
  now: Date,
  options: { readonly retention: boolean },
): Plan {
  const ranged = children.filter((c) => !c.isDefault && c.range !== undefined);
  const create: WantedPartition[] = [];
  const conflicts: PlanConflict[] = [];
  const first = periodStart(now, strategy.interval);
  for (let i = 0; i <= strategy.premake; i++) {
    const from = addPeriods(first, strategy.interval, i);
    const to = addPeriods(first, strategy.interval, i + 1);
    const lo = from.getTime();
    const hi = to.getTime();
    const name = partitionName(strategy.table, periodSuffix(from, strategy.interval));
    const clause = rangeClause(from, to, keyType);
    const covered = ranged.some(
      (c) => c.range !== undefined && c.range.from <= lo && c.range.to >= hi,
    );
    if (covered) continue;
    const overlaps = ranged
      .filter((c) => c.range !== undefined && c.range.from < hi && lo < c.range.to)
      .map((c) => c.name);
    if (overlaps.length > 0) conflicts.push({ name, clause, overlaps });
    else create.push({ name, clause });
  }
  const retire: ChildInfo[] = [];
  if (options.retention && strategy.retention !== undefined) {
    const cutoff = retentionCutoff(now, strategy.retention).getTime();
    for (const child of ranged) {
      if (
        child.range !== undefined &&
        Number.isFinite(child.range.to) &&
        child.range.to <= cutoff
      ) {
        retire.push(child);
      }
    }
    retire.sort((a, b) => (a.range?.to ?? 0) - (b.range?.to ?? 0));
  }
  return { create, conflicts, retire, mismatches: [] };
}

/** Each listed value group that no partition holds yet; groups partly held are conflicts. */
export function planList(strategy: ResolvedListStrategy, children: readonly ChildInfo[]): Plan {
  const holders = new Map<string, string>();
  const groups: { name: string; values: Set<string> }[] = [];
  for (const child of children) {
    if (child.isDefault) continue;
    const values = parseListBound(child.bound);
    if (values === undefined) continue;
    const set = new Set<string>();
    for (const v of values) {
      if (v === null) continue;
      set.add(v);
      holders.set(v, child.name);
    }
    groups.push({ name: child.name, values: set });
  }
  const taken = new Set(children.map((c) => c.name));
  const create: WantedPartition[] = [];
  const conflicts: PlanConflict[] = [];
  strategy.listValues.forEach((values, index) => {
    const exact = groups.some(
      (g) => g.values.size === new Set(values).size && values.every((v) => g.values.has(v)),
    );
    if (exact) return;
    const name = uniqueName(strategy.table, listSuffix(values, index), taken);
    taken.add(name);
    const clause = `FOR VALUES IN (${values.map(quoteLiteral).join(', ')})`;
    const overlaps = [
      ...new Set(values.map((v) => holders.get(v)).filter((h): h is string => h !== undefined)),
    ];
    if (overlaps.length > 0) conflicts.push({ name, clause, overlaps });
    else create.push({ name, clause });
  });
  return { create, conflicts, retire: [], mismatches: [] };
}

/** Remainders 0..modulus-1 that have no partition; partitions of another modulus are mismatches. */
export function planHash(strategy: ResolvedHashStrategy, children: readonly ChildInfo[]): Plan {
  const have = new Set<number>();
  const mismatches: string[] = [];
  for (const child of children) {
    const bound = parseHashBound(child.bound);
    if (bound === undefined) continue;
    if (bound.modulus !== strategy.modulus) mismatches.push(child.name);
    else have.add(bound.remainder);
  }
  if (mismatches.length > 0) return { create: [], conflicts: [], retire: [], mismatches };
  const taken = new Set(children.map((c) => c.name));
  const create: WantedPartition[] = [];
  for (let r = 0; r < strategy.modulus; r++) {
    if (have.has(r)) continue;
    const name = uniqueName(strategy.table, `h${r}`, taken);
    taken.add(name);
    create.push({ name, clause: `FOR VALUES WITH (MODULUS ${strategy.modulus}, REMAINDER ${r})` });
  }
  return { create, conflicts: [], retire: [], mismatches: [] };
}

/**
 * A readable suffix from the values (`us_ca`), lower-case letters, digits and `_` only; `l<n>`
 * when nothing readable is left. The name is quoted anyway: this is about legibility.
 */
export function listSuffix(values: readonly string[], index: number): string {
  const slug = values
    .map((v) =>
      v
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '_')
        .replace(/^_+|_+$/g, ''),
    )
    .filter((v) => v.length > 0)
    .join('_')
    .slice(0, 40)
    .replace(/_+$/, '');
  return slug.length > 0 ? slug : `l${index}`;
}

function uniqueName(table: string, suffix: string, taken: ReadonlySet<string>): string {
  let name = partitionName(table, suffix);
  for (let n = 2; taken.has(name); n++) name = partitionName(table, `${suffix}_${n}`);
  return name;
}
