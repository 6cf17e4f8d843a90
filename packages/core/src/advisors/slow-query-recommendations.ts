import {
  type ExplainResult,
  fetchColumns,
  fetchRelations,
  fingerprintQuery,
  flattenPlan,
  type PlanFinding,
  planString,
} from '../analysis/index.js';
import {
  createIndexSql,
  type IndexShape,
  indexNames,
  loadParser,
  type PartialPredicate,
  predicateSql,
  type QueryClient,
  qualified,
  type SortDirection,
} from '../sql/index.js';
import type { IndexInfo, Scope } from './catalog.js';
import { coveringIndex } from './coverage.js';
import { lookupNames, pickName } from './index-names.js';
import { choosePredicate, constantEqualities } from './partial.js';
import { clampPriority, count, type IndexRecommendation } from './recommendations.js';
import { asRow, num } from './sql.js';

/** Index recommendations from the slow-query log: the plans' findings, folded per table. */

/** A slow statement with its captured plan: a SlowQueryEntry joined with a CapturedPlan. */
export interface SlowQueryIndexInput {
  readonly query: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly plan?:
    | {
        readonly findings: readonly PlanFinding[];
        /** The plan itself; needed only for partial-index predicates (unredacted plans). */
        readonly plan?: ExplainResult | undefined;
      }
    | undefined;
}

/** At most this many columns from a finding: wider indexes rarely pay for their upkeep. */
const MAX_INDEX_COLUMNS = 3;

interface Draft {
  readonly relation: string;
  readonly schema: string | undefined;
  readonly columns: readonly string[];
  readonly order: readonly SortDirection[] | undefined;
  readonly finding: PlanFinding;
  readonly entry: SlowQueryIndexInput;
  readonly plan: ExplainResult | undefined;
}

interface Candidate {
  readonly shape: IndexShape;
  readonly tableOid: number;
  readonly partitioned: boolean;
  severityPoints: number;
  calls: number;
  totalMs: number;
  readonly entries: Set<SlowQueryIndexInput>;
  readonly findings: PlanFinding[];
  readonly predicateFraction: number | undefined;
}

const SEVERITY_POINTS = { info: 1, warning: 2, critical: 3 } as const;

function finite(n: unknown): number {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0;
}

/** Findings that name a relation and the columns an index on it would lead with. */
function drafts(entry: SlowQueryIndexInput): Draft[] {
  const out: Draft[] = [];
  const findings = Array.isArray(entry.plan?.findings) ? entry.plan.findings : [];
  for (const finding of findings) {
    if (finding.relation === undefined || finding.columns === undefined) continue;
    if (finding.severity === 'info' || finding.columns.length === 0) continue;
    let order: readonly SortDirection[] | undefined;
    if (finding.kind === 'seq-scan') {
      // Only a scan discarding most rows is worth an index (as in analysis/suggestions.ts).
      if ((finding.metrics.removedFraction ?? 0) <= 0.9) continue;
    } else if (finding.kind === 'sort-under-limit') {
      order = finding.order?.slice(0, MAX_INDEX_COLUMNS);
    } else if (finding.kind !== 'nested-loop') {
      continue;
    }
    out.push({
      relation: finding.relation,
      schema: finding.schema,
      columns: finding.columns.slice(0, MAX_INDEX_COLUMNS),
      order: order?.some((d) => d === 'desc') ? order : undefined,
      finding,
      entry,
      plan: entry.plan?.plan,
    });
  }
  return out;
}

/** The Filter and alias of the scan a finding was made on, from an unredacted plan. */
function scanFilter(
  draft: Draft,
): { readonly filter: string; readonly alias: string | undefined } | undefined {
  if (draft.plan === undefined || draft.finding.kind !== 'seq-scan') return undefined;
  try {
    const visit = flattenPlan(draft.plan).find((v) => v.path === draft.finding.path);
    if (visit === undefined || planString(visit.node, 'Relation Name') !== draft.relation) {
      return undefined;
    }
    const filter = planString(visit.node, 'Filter');
    return filter === undefined ? undefined : { filter, alias: planString(visit.node, 'Alias') };
  } catch {
    return undefined;
  }
}

function inScope(scope: Scope, schema: string, table: string): boolean {
  if (scope.schema !== undefined && scope.schema !== schema) return false;
  return scope.tables === undefined || scope.tables.includes(table);
}

async function tableOids(
  client: QueryClient,
  tables: readonly { readonly schema: string; readonly name: string }[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (tables.length === 0) return out;
  const keys = tables.map((t) => qualified(t.schema, t.name));
  const result = await client.query(
    `SELECT r.q, pg_catalog.to_regclass(r.q)::oid::int8 AS oid
       FROM pg_catalog.unnest($1::text[]) AS r(q)`,
    [keys],
  );
  for (const raw of result.rows) {
    const r = asRow(raw);
    const oid = num(r.oid);
    if (typeof r.q === 'string' && oid !== undefined) out.set(r.q, oid);
  }
  return out;
}

function benefit(c: Candidate, share: number): string {
  const scans = c.findings.filter((f) => f.kind === 'seq-scan');
  const scanned = Math.max(0, ...scans.map((f) => f.metrics.rowsScanned ?? 0));
  const kept = Math.max(0, ...scans.map((f) => f.metrics.rowsKept ?? 0));
  const load =
    `${count(c.calls)} calls, ${count(c.totalMs)} ms in the slow-query log` +
    ` (${Math.round(share * 100)}% of its time)`;
  if (scanned > 0) {
    return (
      `Reads about ${count(Math.max(1, kept))} rows through the index instead of scanning ` +
      `${count(scanned)}; ${load}.`
    );
  }
  return `Lets PostgreSQL read rows in index order instead of sorting; ${load}.`;
}

function describeShape(shape: IndexShape): string {
  const cols = shape.columns
    .map((c, i) => `${c}${shape.order?.[i] === 'desc' ? ' DESC' : ''}`)
    .join(', ');
  const where = shape.predicate === undefined ? '' : ` WHERE ${predicateSql(shape.predicate)}`;
  return `${shape.schema}.${shape.table} (${cols})${where}`;
}

/** Whether an index on `long` serves every search an index on `short` serves (btree prefix). */
function servesPrefix(long: Candidate, short: Candidate): boolean {
  if (long === short || long.tableOid !== short.tableOid) return false;
  if (
    JSON.stringify(long.shape.predicate ?? null) !== JSON.stringify(short.shape.predicate ?? null)
  ) {
    return false;
  }
  const n = short.shape.columns.length;
  if (long.shape.columns.length <= n) return false;
  return short.shape.columns.every(
    (c, i) =>
      long.shape.columns[i] === c &&
      (long.shape.order?.[i] ?? 'asc') === (short.shape.order?.[i] ?? 'asc'),
  );
}

/**
 * Folds a candidate into a longer one that leads with its columns: one index on (a, b) serves
 * the statements that wanted (a) too, and recommending both would create a duplicate.
 */
function foldPrefixes(candidates: Candidate[]): Candidate[] {
  const byLength = [...candidates].sort((x, y) => y.shape.columns.length - x.shape.columns.length);
  const kept: Candidate[] = [];
  for (const c of byLength) {
    const into = kept.find((k) => servesPrefix(k, c));
    if (into === undefined) {
      kept.push(c);
      continue;
    }
    into.severityPoints = Math.max(into.severityPoints, c.severityPoints);
    for (const entry of c.entries) {
      if (into.entries.has(entry)) continue;
      into.entries.add(entry);
      into.calls += finite(entry.calls);
      into.totalMs += finite(entry.totalMs);
    }
    into.findings.push(...c.findings);
  }
  return kept;
}

/**
 * Index recommendations from slow statements' plan findings: sequential scans discarding
 * most rows (WHERE columns), nested loops scanning their inner side (JOIN columns) and sorts
 * under a LIMIT (ORDER BY columns, directions kept). Relations and columns are checked in
 * the catalog; a recommendation an existing valid index already leads with is left out, and
 * one whose columns lead another recommendation's is folded into it.
 *
 * Priority = severity points (critical 3, warning 2) + load points (2 when these statements
 * take at least 25 % of the slow-query time given, 1 from 5 %), between 1 and 5.
 */
export async function slowQueryRecommendations(
  client: QueryClient,
  queries: readonly SlowQueryIndexInput[],
  scope: Scope,
  indexes: readonly IndexInfo[],
): Promise<IndexRecommendation[]> {
  const all = queries.flatMap(drafts);
  if (all.length === 0) return [];
  // To show the statements normalized ($n for literals) whatever text the caller passed.
  await loadParser();
  const relations = await fetchRelations(
    client,
    all.map((d) => ({ relation: d.relation, schema: d.schema ?? scope.schema })),
  );
  const resolved = all.flatMap((d) => {
    const info = relations.get(qualified(d.schema ?? scope.schema, d.relation));
    if (info === undefined || !['r', 'm', 'p'].includes(info.kind)) return [];
    if (!inScope(scope, info.schema, info.name)) return [];
    return [{ draft: d, schema: info.schema, table: info.name }];
  });
  const oids = await tableOids(
    client,
    resolved.map((r) => ({ schema: r.schema, name: r.table })),
  );
  const kinds = new Map([...relations.values()].map((i) => [qualified(i.schema, i.name), i.kind]));
  const candidates = new Map<string, Candidate>();
  for (const { draft, schema, table } of resolved) {
    const key = qualified(schema, table);
    const tableOid = oids.get(key);
    if (tableOid === undefined) continue;
    const existing = await fetchColumns(client, key, draft.columns);
    const keep = draft.columns.map((c, i) => ({ c, i })).filter(({ c }) => existing.has(c));
    if (keep.length === 0) continue;
    let columns = keep.map(({ c }) => c);
    const order = draft.order === undefined ? undefined : keep.map(({ i }) => draft.order![i]!);
    let predicate: (PartialPredicate & { readonly fraction: number }) | undefined;
    const scan = scanFilter(draft);
    if (scan !== undefined) {
      const equalities = constantEqualities(scan.filter, scan.alias).filter((e) =>
        existing.has(e.column),
      );
      predicate = await choosePredicate(client, schema, table, equalities);
      if (predicate !== undefined) {
        const rest = columns.filter((c) => c !== predicate!.column);
        columns = rest.length > 0 ? rest : [predicate.column];
      }
    }
    const shape: IndexShape = {
      schema,
      table,
      columns,
      ...(order === undefined ? {} : { order }),
      ...(predicate === undefined
        ? {}
        : { predicate: { column: predicate.column, value: predicate.value } }),
    };
    const id = JSON.stringify([schema, table, columns, order ?? [], predicate ?? null]);
    let candidate = candidates.get(id);
    if (candidate === undefined) {
      candidate = {
        shape,
        tableOid,
        partitioned: kinds.get(key) === 'p',
        severityPoints: 0,
        calls: 0,
        totalMs: 0,
        entries: new Set(),
        findings: [],
        predicateFraction: predicate?.fraction,
      };
      candidates.set(id, candidate);
    }
    candidate.severityPoints = Math.max(
      candidate.severityPoints,
      SEVERITY_POINTS[draft.finding.severity],
    );
    if (!candidate.entries.has(draft.entry)) {
      candidate.entries.add(draft.entry);
      candidate.calls += finite(draft.entry.calls);
      candidate.totalMs += finite(draft.entry.totalMs);
    }
    candidate.findings.push(draft.finding);
  }
  const merged = foldPrefixes([...candidates.values()]);
  const totalMs = queries.reduce((sum, q) => sum + finite(q.totalMs), 0);
  const totalCalls = queries.reduce((sum, q) => sum + finite(q.calls), 0);
  const out: IndexRecommendation[] = [];
  for (const c of merged) {
    const { plain, hashed } = indexNames(c.shape);
    if (coveringIndex(indexes, c.tableOid, c.shape, [plain, hashed]) !== undefined) continue;
    const taken = await lookupNames(client, c.shape.schema, [plain, hashed]);
    const name = pickName(c.shape, c.tableOid, taken);
    if (name === undefined) continue;
    const share = totalMs > 0 ? c.totalMs / totalMs : totalCalls > 0 ? c.calls / totalCalls : 0;
    const loadPoints = share >= 0.25 ? 2 : share >= 0.05 ? 1 : 0;
    const first = c.findings[0]!;
    const why = first.message.charAt(0).toLowerCase() + first.message.slice(1);
    const partial =
      c.shape.predicate === undefined
        ? ''
        : ` Partial: ${c.shape.predicate.column} has few distinct values and this one covers ` +
          `about ${Math.max(1, Math.round((c.predicateFraction ?? 0) * 100))}% of the rows; ` +
          'only statements with this same constant in their text can use the index.';
    out.push({
      schema: c.shape.schema,
      table: c.shape.table,
      columns: c.shape.columns,
      ...(c.shape.order === undefined ? {} : { order: c.shape.order }),
      ...(c.shape.predicate === undefined
        ? {}
        : { where: predicateSql(c.shape.predicate), predicate: c.shape.predicate }),
      name,
      reason:
        `Index ${describeShape(c.shape)}: ${why} (${c.entries.size} slow ` +
        `statement${c.entries.size === 1 ? '' : 's'}).${partial}` +
        (c.partitioned
          ? ' The table is partitioned: each partition gets a concurrent build, attached to ' +
            'the parent index.'
          : ''),
      priority: clampPriority(c.severityPoints + loadPoints),
      estimatedBenefit: benefit(c, share),
      sql: createIndexSql(c.shape, name, c.partitioned ? 'only' : 'concurrently'),
      source: 'slow-query',
      ...(c.partitioned ? { partitioned: true } : {}),
      queries: [...c.entries]
        .slice(0, 3)
        .map((e) => fingerprintQuery(String(e.query), 500).normalized),
    });
  }
  return out;
}
