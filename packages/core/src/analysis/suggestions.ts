import { createIndexSql, indexNames, type QueryClient, qualified } from '../sql/index.js';
import { fetchColumns, fetchIndexLeadingColumns, type RelationInfo } from './catalog.js';
import { underSavepoint } from './explain-runner.js';
import type { PlanFinding } from './finding.js';

export type SuggestionKind = 'index' | 'rewrite' | 'statistics' | 'config';
export type SuggestionPriority = 1 | 2 | 3 | 4 | 5;

/**
 * One thing to do about a statement (an index, ANALYZE, VACUUM, a rewrite), with its priority and,
 * when it is a statement, the SQL.
 */
export interface QuerySuggestion {
  readonly description: string;
  /** 5 is the most valuable. */
  readonly priority: SuggestionPriority;
  readonly kind: SuggestionKind;
  /** A statement that applies it, every identifier quoted and checked against the catalog. */
  readonly sql?: string;
  readonly relation?: string;
  readonly columns?: readonly string[];
}

/** Tables with fewer changed rows since their last ANALYZE are not called stale. */
const STALE_MIN_CHANGES = 1000;
const STALE_FRACTION = 0.2;
const MAX_INDEX_COLUMNS = 3;

/** One suggestion per kind and statement (or text), keeping the highest priority. */
export function dedupe(suggestions: readonly QuerySuggestion[]): QuerySuggestion[] {
  const best = new Map<string, QuerySuggestion>();
  for (const s of suggestions) {
    const key = `${s.kind}|${s.sql ?? s.description}`;
    const previous = best.get(key);
    if (previous === undefined || previous.priority < s.priority) best.set(key, s);
  }
  return [...best.values()];
}

export function clampPriority(n: number): SuggestionPriority {
  return Math.min(5, Math.max(1, Math.round(n))) as SuggestionPriority;
}

function displayName(info: RelationInfo): string {
  return `${info.schema}.${info.name}`;
}

/** Ranked advice for a plan's findings and the statistics of the relations it reads. */
export async function suggest(
  client: QueryClient,
  findings: readonly PlanFinding[],
  relations: ReadonlyMap<string, RelationInfo>,
): Promise<QuerySuggestion[]> {
  const out: QuerySuggestion[] = [];
  const infoOf = (f: PlanFinding): RelationInfo | undefined =>
    f.relation === undefined ? undefined : relations.get(qualified(f.schema, f.relation));
  for (const finding of findings) {
    const info = infoOf(finding);
    switch (finding.kind) {
      case 'seq-scan': {
        if ((finding.metrics.removedFraction ?? 0) <= 0.9) break;
        const priority = finding.severity === 'critical' ? 5 : 4;
        const index = await indexSuggestion(client, info, finding.columns ?? [], priority, finding);
        if (index !== undefined) out.push(index);
        break;
      }
      case 'nested-loop':
        if (finding.severity === 'critical') {
          const index = await indexSuggestion(client, info, finding.columns ?? [], 4, finding);
          if (index !== undefined) out.push(index);
        }
        break;
      case 'sort-under-limit': {
        const priority = finding.severity === 'critical' ? 4 : 3;
        const index = await indexSuggestion(client, info, finding.columns ?? [], priority, finding);
        if (index !== undefined) out.push(index);
        break;
      }
      case 'rows-removed':
        if (finding.severity !== 'info') {
          out.push({ description: finding.suggestion, priority: 3, kind: 'index', ...named(info) });
        }
        break;
      case 'row-estimate':
        out.push(statisticsSuggestion(finding, info));
        break;
      case 'disk-sort':
      case 'disk-hash':
        out.push({ description: finding.suggestion, priority: 3, kind: 'config' });
        break;
      case 'lossy-bitmap':
        out.push({ description: finding.suggestion, priority: 2, kind: 'config' });
        break;
      case 'heap-fetches':
        if (finding.severity !== 'info' && info !== undefined) {
          out.push({
            description: finding.suggestion,
            priority: 3,
            kind: 'statistics',
            sql: `VACUUM (ANALYZE) ${qualified(info.schema, info.name)}`,
            relation: displayName(info),
          });
        }
        break;
    }
  }
  for (const info of relations.values()) {
    const stale = staleStatistics(info);
    if (stale !== undefined) out.push(stale);
  }
  return out;
}

function named(info: RelationInfo | undefined): { relation?: string } {
  return info === undefined ? {} : { relation: displayName(info) };
}

function statisticsSuggestion(
  finding: PlanFinding,
  info: RelationInfo | undefined,
): QuerySuggestion {
  const priority = finding.severity === 'critical' ? 4 : finding.severity === 'warning' ? 3 : 2;
  if (info === undefined) {
    return {
      description: finding.suggestion,
      priority: clampPriority(priority - 1),
      kind: 'statistics',
    };
  }
  return {
    description: finding.suggestion,
    priority: clampPriority(priority),
    kind: 'statistics',
    sql: `ANALYZE ${qualified(info.schema, info.name)}`,
    relation: displayName(info),
    ...(finding.columns === undefined ? {} : { columns: finding.columns }),
  };
}

function staleStatistics(info: RelationInfo): QuerySuggestion | undefined {
  const rows = info.rows ?? 0;
  const changed = info.modifiedSinceAnalyze ?? 0;
  // From pg_statistic, not last_analyze: that one is per node (empty on a replica, cleared by
  // pg_stat_reset()), and would call a well-analyzed table "never analyzed".
  const never = !info.hasStatistics && info.kind !== 'p';
  const stale = changed >= Math.max(STALE_MIN_CHANGES, STALE_FRACTION * rows);
  if (!stale && !(never && rows >= STALE_MIN_CHANGES)) return undefined;
  const why = never
    ? `${displayName(info)} has never been analyzed`
    : `${Math.round(changed).toLocaleString('en-US')} rows of ${displayName(info)} changed since its ` +
      `last ANALYZE${info.lastAnalyzedAt === undefined ? '' : ` (${new Date(info.lastAnalyzedAt).toISOString()})`}`;
  return {
    description: `${why}: the planner works from stale row counts and value distributions.`,
    priority: 3,
    kind: 'statistics',
    sql: `ANALYZE ${qualified(info.schema, info.name)}`,
    relation: displayName(info),
  };
}

/**
 * A CREATE INDEX CONCURRENTLY for the finding's columns, after checking that the relation is a
 * table, that each column exists (names come from the catalog, not from the plan text), and
 * that no valid index already leads with the first column.
 */
async function indexSuggestion(
  client: QueryClient,
  info: RelationInfo | undefined,
  wanted: readonly string[],
  priority: SuggestionPriority,
  finding: PlanFinding,
): Promise<QuerySuggestion | undefined> {
  if (info === undefined || wanted.length === 0 || (info.kind !== 'r' && info.kind !== 'm')) {
    return undefined;
  }
  const table = qualified(info.schema, info.name);
  const parsed = wanted
    .slice(0, MAX_INDEX_COLUMNS)
    .map((name, i) => ({ name, descending: finding.order?.[i] === 'desc' }));
  const checked = await underSavepoint(client, async () => ({
    columns: await fetchColumns(
      client,
      table,
      parsed.map((c) => c.name),
    ),
    leading: await fetchIndexLeadingColumns(client, table),
  }));
  if (checked === undefined) return undefined;
  const columns = parsed.filter((c) => checked.columns.has(c.name));
  const first = columns[0];
  if (first === undefined || checked.leading.has(first.name)) return undefined;
  const names = columns.map((c) => c.name);
  const shape = {
    schema: info.schema,
    table: info.name,
    columns: names,
    ...(columns.some((c) => c.descending)
      ? { order: columns.map((c) => (c.descending ? ('desc' as const) : ('asc' as const))) }
      : {}),
  };
  const shown = columns.map((c) => `${c.name}${c.descending ? ' DESC' : ''}`).join(', ');
  const why = finding.message.charAt(0).toLowerCase() + finding.message.slice(1);
  return {
    description: `Create an index on ${displayName(info)} (${shown}): ${why}`,
    priority,
    kind: 'index',
    sql: createIndexSql(shape, indexNames(shape).plain),
    relation: displayName(info),
    columns: names,
  };
}
