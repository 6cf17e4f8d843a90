import { ConfigError, type ConfigIssue } from '../errors/index.js';
import { dropIndexSql, type QueryClient, qualified, reindexSql } from '../sql/index.js';
import { type BloatedIndex, type BloatMethod, findBloat } from './bloat.js';
import { type IndexInfo, loadForeignKeys, loadIndexes, nodeFacts, type Scope } from './catalog.js';
import { type DuplicateIndex, findDuplicates, isDroppable } from './duplicates.js';
import { type ForeignKeyGap, foreignKeyRecommendations } from './foreign-key-recommendations.js';
import type { IndexRecommendation } from './recommendations.js';
import {
  type SlowQueryIndexInput,
  slowQueryRecommendations,
} from './slow-query-recommendations.js';

/**
 * What `adviseIndexes` looks at: which tables and schema, the slow statements with their plans, and
 * the thresholds for unused and bloated indexes.
 */
export interface AdviseIndexesOptions {
  /** Only these tables (names as the catalog spells them), in `schema` or any schema. */
  readonly tables?: readonly string[];
  /** Only this schema; also the schema of plan relations that name none. Default: all. */
  readonly schema?: string;
  /**
   * Slow statements with their captured plans (SlowQueryEntry + CapturedPlan): their
   * seq-scan, nested-loop and sort-under-limit findings become recommendations, weighted by
   * calls and total time.
   */
  readonly slowQueries?: readonly SlowQueryIndexInput[];
  /** Report indexes at least this bloated, in percent. Default 30. */
  readonly bloatThresholdPercent?: number;
  /** Smaller indexes are not judged for bloat (a few pages are never dense). Default 1 MiB. */
  readonly bloatMinSizeBytes?: number;
  /** 'auto' (default): pgstattuple when installed and allowed, else the statistics estimate. */
  readonly bloatMethod?: 'auto' | BloatMethod;
  /** With pgstattuple, larger indexes are estimated instead of read. Default 10 GiB. */
  readonly exactBloatMaxBytes?: number;
  /** Unused indexes must be larger than this. Default 0. */
  readonly unusedMinSizeBytes?: number;
}

/** A droppable index no scan has used since statistics were reset, on the node read. */
export interface UnusedIndex {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly definition: string;
  readonly sizeBytes: number;
  readonly scans: number;
  /** pg_stat_all_indexes.last_idx_scan (PostgreSQL 16+), when ever scanned. */
  readonly lastScanAt?: string;
  /** `DROP INDEX CONCURRENTLY IF EXISTS "schema"."name"`: check every replica first. */
  readonly sql: string;
}

/**
 * What to do with an invalid index: 'reindex' rebuilds it, 'drop' removes a leftover (or a
 * unique index whose build most likely failed on duplicate keys: fix them, then create it
 * again), 'wait' when a build is running right now.
 */
export type InvalidIndexAction = 'reindex' | 'drop' | 'wait';

/**
 * An index PostgreSQL does not use because a concurrent build or rebuild failed (or is running),
 * with what to do about it.
 */
export interface InvalidIndex {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly definition: string;
  readonly unique: boolean;
  /** A CREATE INDEX CONCURRENTLY or REINDEX is building it right now. */
  readonly building: boolean;
  readonly action: InvalidIndexAction;
  readonly reason: string;
  /** The statement for `action` (none for 'wait'). */
  readonly sql?: string;
  readonly reindexSql: string;
  readonly dropSql: string;
}

/**
 * Everything `adviseIndexes` found: indexes to create, and duplicate, unused, invalid and bloated
 * ones, and foreign keys without an index.
 */
export interface IndexReport {
  /** The most valuable first. */
  recommendations: IndexRecommendation[];
  duplicates: DuplicateIndex[];
  unused: UnusedIndex[];
  invalid: InvalidIndex[];
  bloated: BloatedIndex[];
  foreignKeysWithoutIndex: ForeignKeyGap[];
  /** Where the usage statistics come from and what that means for `unused`. */
  readonly note: string;
  readonly bloatMethod: BloatMethod;
}

const MIB = 1024 * 1024;

function numberOption(
  issues: ConfigIssue[],
  field: string,
  value: number | undefined,
  fallback: number,
  max = Number.POSITIVE_INFINITY,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
    issues.push({ field, message: `must be a number from 0 to ${max} (got ${String(value)})` });
    return fallback;
  }
  return value;
}

function validate(options: AdviseIndexesOptions) {
  const issues: ConfigIssue[] = [];
  const bloatThresholdPercent = numberOption(
    issues,
    'bloatThresholdPercent',
    options.bloatThresholdPercent,
    30,
    100,
  );
  const bloatMinSizeBytes = numberOption(
    issues,
    'bloatMinSizeBytes',
    options.bloatMinSizeBytes,
    MIB,
  );
  const exactBloatMaxBytes = numberOption(
    issues,
    'exactBloatMaxBytes',
    options.exactBloatMaxBytes,
    10 * 1024 * MIB,
  );
  const unusedMinSizeBytes = numberOption(
    issues,
    'unusedMinSizeBytes',
    options.unusedMinSizeBytes,
    0,
  );
  const bloatMethod = options.bloatMethod ?? 'auto';
  if (!['auto', 'pgstattuple', 'estimate'].includes(bloatMethod)) {
    issues.push({ field: 'bloatMethod', message: "must be 'auto', 'pgstattuple' or 'estimate'" });
  }
  if (options.schema !== undefined && (typeof options.schema !== 'string' || !options.schema)) {
    issues.push({ field: 'schema', message: 'must be a non-empty schema name' });
  }
  if (
    options.tables !== undefined &&
    (!Array.isArray(options.tables) || options.tables.some((t) => typeof t !== 'string' || !t))
  ) {
    issues.push({ field: 'tables', message: 'must be an array of non-empty table names' });
  }
  if (options.slowQueries !== undefined && !Array.isArray(options.slowQueries)) {
    issues.push({ field: 'slowQueries', message: 'must be an array of slow-query entries' });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    bloatThresholdPercent,
    bloatMinSizeBytes,
    exactBloatMaxBytes,
    unusedMinSizeBytes,
    bloatMethod,
  };
}

function unusedIndexes(indexes: readonly IndexInfo[], minSizeBytes: number): UnusedIndex[] {
  return indexes
    .filter(
      (i) =>
        i.scans === 0 && !i.unique && isDroppable(i) && !i.building && i.sizeBytes > minSizeBytes,
    )
    .sort((a, b) => b.sizeBytes - a.sizeBytes || a.name.localeCompare(b.name))
    .map((i) => ({
      schema: i.schema,
      table: i.table,
      name: i.name,
      definition: i.definition,
      sizeBytes: i.sizeBytes,
      scans: 0,
      ...(i.lastScanAt === undefined ? {} : { lastScanAt: i.lastScanAt }),
      sql: dropIndexSql(i.schema, i.name),
    }));
}

/** Names REINDEX CONCURRENTLY gives its transient copies; a leftover means it failed. */
const REINDEX_LEFTOVER = /_cc(new|old)\d*$/;

function invalidIndexes(indexes: readonly IndexInfo[]): InvalidIndex[] {
  return indexes
    .filter((i) => !i.valid)
    .map((i): InvalidIndex => {
      const reindex = reindexSql(i.schema, i.name);
      // A partitioned index cannot be dropped concurrently (nor does it need to be: no data).
      const drop =
        i.kind === 'I'
          ? `DROP INDEX IF EXISTS ${qualified(i.schema, i.name)}`
          : dropIndexSql(i.schema, i.name);
      const base = { schema: i.schema, table: i.table, name: i.name, definition: i.definition };
      const common = {
        ...base,
        unique: i.unique,
        building: i.building,
        reindexSql: reindex,
        dropSql: drop,
      };
      if (i.building) {
        return {
          ...common,
          action: 'wait',
          reason: 'An index build is running right now; it is valid once the build completes.',
        };
      }
      if (i.kind === 'I') {
        return {
          ...common,
          action: 'drop',
          sql: drop,
          reason:
            'A partitioned index stays invalid until every partition has an attached index. ' +
            'If pgpulse started it, applying the recommendation again completes it; otherwise ' +
            'attach the missing partitions\u2019 indexes or drop it.',
        };
      }
      if (REINDEX_LEFTOVER.test(i.name)) {
        return {
          ...common,
          action: 'drop',
          sql: drop,
          reason: 'A transient copy left behind by a failed REINDEX CONCURRENTLY: drop it.',
        };
      }
      if (i.unique) {
        return {
          ...common,
          action: 'drop',
          sql: drop,
          reason:
            'A unique index whose concurrent build failed, most likely on duplicate keys: ' +
            'REINDEX would fail the same way. Drop it, remove the duplicates, create it again.',
        };
      }
      return {
        ...common,
        action: 'reindex',
        sql: reindex,
        reason:
          'A failed CREATE INDEX CONCURRENTLY left it invalid: it is maintained on every write ' +
          'but never used. Rebuild it (or drop it if it is no longer wanted).',
      };
    });
}

function mergeRecommendations(recs: readonly IndexRecommendation[]): IndexRecommendation[] {
  const best = new Map<string, IndexRecommendation>();
  for (const rec of recs) {
    const key = JSON.stringify([
      rec.schema,
      rec.table,
      rec.columns,
      rec.order ?? [],
      rec.predicate ?? null,
    ]);
    const previous = best.get(key);
    if (previous === undefined || rec.priority > previous.priority) best.set(key, rec);
  }
  return [...best.values()].sort(
    (a, b) =>
      b.priority - a.priority ||
      (a.source === b.source ? 0 : a.source === 'slow-query' ? -1 : 1) ||
      a.schema.localeCompare(b.schema) ||
      a.table.localeCompare(b.table) ||
      a.name.localeCompare(b.name),
  );
}

function usageNote(replica: boolean, statsSince: string | undefined, method: BloatMethod): string {
  const since = statsSince === undefined ? '' : ` (statistics reset at ${statsSince})`;
  const bloat =
    method === 'pgstattuple'
      ? 'Bloat was measured with pgstattuple (pgstatindex), estimated only above exactBloatMaxBytes.'
      : 'Bloat is estimated from statistics: CREATE EXTENSION pgstattuple to measure it.';
  return (
    `Index usage (idx_scan) is counted per node and was read on the ${replica ? 'replica' : 'primary'} ` +
    `this client is connected to${since}. An index used only by queries on replicas shows 0 ` +
    'scans here: check pg_stat_user_indexes on every replica before dropping an unused index. ' +
    bloat
  );
}

/**
 * Index advice for the tables in scope: missing indexes (from slow-query plan findings and
 * from foreign keys no index serves), duplicates (pghero's rule), unused, invalid and bloated
 * indexes. Read-only: nothing is created or dropped; every statement in the report quotes
 * its identifiers, taken from the catalog.
 *
 * `client` may be a pool or one connection; run it on the primary (usage statistics are per
 * node, see `note`), outside a transaction (a refused pgstatindex call would abort one).
 */
export async function adviseIndexes(
  client: QueryClient,
  options: AdviseIndexesOptions = {},
): Promise<IndexReport> {
  const settings = validate(options);
  const scope: Scope = { schema: options.schema, tables: options.tables };
  const indexes = await loadIndexes(client, scope);
  const foreignKeys = await loadForeignKeys(client, scope);
  const facts = await nodeFacts(client);
  const slow = await slowQueryRecommendations(client, options.slowQueries ?? [], scope, indexes);
  const fk = await foreignKeyRecommendations(client, foreignKeys, indexes);
  const bloat = await findBloat(client, indexes, {
    thresholdPercent: settings.bloatThresholdPercent,
    minSizeBytes: settings.bloatMinSizeBytes,
    method: settings.bloatMethod as 'auto' | BloatMethod,
    exactMaxBytes: settings.exactBloatMaxBytes,
  });
  return {
    recommendations: mergeRecommendations([...slow, ...fk.recommendations]),
    duplicates: findDuplicates(indexes),
    unused: unusedIndexes(indexes, settings.unusedMinSizeBytes),
    invalid: invalidIndexes(indexes),
    bloated: bloat.bloated,
    foreignKeysWithoutIndex: fk.gaps,
    note: usageNote(facts.replica, facts.statsSince, bloat.method),
    bloatMethod: bloat.method,
  };
}
