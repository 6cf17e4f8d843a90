import type pg from 'pg';
import {
  type AdviseIndexesOptions,
  type ApplyResult,
  adviseIndexes,
  applyRecommendations,
  type BloatRebuildResult,
  type IndexReport,
  type MaintenanceOptions,
  type RebuildResult,
  rebuildBloatedIndexes,
  rebuildIndex,
} from '../advisors/index.js';
import type { QueryAnalysis, SlowQueryReport } from '../analysis/index.js';
import { Cluster, type ClusterStats, createCluster } from '../cluster/index.js';
import type { PgPulseConfig } from '../config/index.js';
import type { InScope } from '../context/index.js';
import {
  type Alert,
  type LockWait,
  type LongTransaction,
  listPartitionedTables,
  type NodeFigures,
  readLockContention,
  readLongTransactions,
  readNodeFigures,
  readTableStats,
  type TableStats,
} from '../monitoring/index.js';
import {
  type MaintenanceReport,
  PartitionManager,
  type PartitionReport,
  type PartitionStrategy,
  partitionReport,
  type SetupOptions,
  type SetupResult,
} from '../partitioning/index.js';

/**
 * Which tables `optimizeIndexes` looks at, its bloat threshold, and whether it builds the
 * recommendations of high priority.
 */
export interface OptimizeIndexesOptions
  extends Pick<AdviseIndexesOptions, 'tables' | 'schema' | 'bloatThresholdPercent'> {
  /** Build the recommendations at or above `priorityThreshold` (CREATE INDEX CONCURRENTLY). */
  readonly apply?: boolean;
  /** Default 4: only priority 4-5 recommendations are built. */
  readonly priorityThreshold?: number;
  /**
   * REINDEX INDEX CONCURRENTLY every index reported bloated (at or over
   * `bloatThresholdPercent`, default 30 %), one at a time under the table's advisory lock.
   */
  readonly rebuildBloated?: boolean;
}

/** What `optimizeIndexes` found and, with `apply`, what it built. */
export interface IndexOptimization extends IndexReport {
  /** What `apply` did, recommendation by recommendation (empty without `apply`). */
  readonly applied: readonly ApplyResult[];
  /** What `rebuildBloated` did, index by index, sizes before and after (empty without it). */
  readonly rebuilt: readonly BloatRebuildResult[];
}

/**
 * What `DatabaseOptimizationService.analyzeDatabaseHealth()` returns: nodes, routing, replication, alerts,
 * slow queries and per-node health figures.
 */
export interface DatabaseHealthReport {
  readonly generatedAt: string;
  readonly nodes: ClusterStats['nodes'];
  readonly routing: ClusterStats['routing'];
  readonly replication: readonly {
    readonly node: string;
    readonly up: boolean;
    readonly lagMs: number | undefined;
    readonly lagBytes: number | undefined;
    readonly lagging: boolean;
  }[];
  readonly slowQueries: SlowQueryReport;
  readonly indexes: IndexReport | undefined;
  /** Every partitioned table on the primary, with each partition's rows and size. */
  readonly partitions: readonly PartitionReport[];
  /** Per reachable node: connections against max_connections, cache hit ratio, xid age. */
  readonly nodeFigures: readonly NodeFigures[];
  /** Nodes whose figures could not be read, with the reason. */
  readonly unreachable: readonly { readonly node: string; readonly error: string }[];
  /** User tables on the primary, largest first. */
  readonly tables: readonly TableStats[];
  /** Who blocks whom on the primary now. */
  readonly locks: readonly LockWait[];
  /** Transactions on the primary open longer than `longTransactionMs`. */
  readonly longTransactions: readonly LongTransaction[];
  /** Alerts firing now (empty without `monitoring` in the cluster's config). */
  readonly alerts: readonly Alert[];
}

export interface HealthReportOptions {
  /** Include index advice (default true). */
  readonly indexes?: boolean;
  /** Default: `monitoring.thresholds.longTransactionMs` (60 000 unless configured). */
  readonly longTransactionMs?: number;
  /** How many tables to list (default 50, largest first). */
  readonly tableLimit?: number;
}

/** Partitioned tables the service maintains, and how often. */
export interface DatabaseOptimizationServiceOptions {
  /** Time-partitioned tables to keep premade and trimmed (maintenance runs once initialized). */
  readonly partitioning?: readonly PartitionStrategy[];
  /** Maintenance interval, ms (default one hour). */
  readonly partitionMaintenanceIntervalMs?: number;
}

/**
 * One object for the whole feature set: routed sessions, query analysis, slow-query report,
 * index advice (and building it), time partitioning with retention, and a health report.
 * Everything here is a thin composition of the cluster and the core modules.
 */
/** Options of `DatabaseOptimizationService.read()`. */
export interface ReadOptions {
  /** Read at 'strong' consistency (the primary) instead of 'eventual' (any replica). */
  readonly consistencyRequired?: boolean;
}

/**
 * The guide's facade over a cluster: reads and writes routed, slow-query analysis, index advice and
 * maintenance, partition management and health reports.
 */
export class DatabaseOptimizationService {
  readonly cluster: Cluster;
  private readonly ownsCluster: boolean;
  private readonly partitionManager: PartitionManager;
  private readonly partitioned: { schema: string; table: string }[] = [];

  constructor(cluster: Cluster | PgPulseConfig, options: DatabaseOptimizationServiceOptions = {}) {
    this.ownsCluster = !(cluster instanceof Cluster);
    this.cluster = cluster instanceof Cluster ? cluster : createCluster(cluster);
    this.partitionManager = new PartitionManager(
      () => this.cluster.acquire('primary'),
      options.partitioning ?? [],
      options.partitionMaintenanceIntervalMs === undefined
        ? {}
        : { intervalMs: options.partitionMaintenanceIntervalMs },
    );
    for (const s of this.partitionManager.strategies)
      this.partitioned.push({ schema: s.schema, table: s.table });
  }

  /** Probes the nodes, loads the parser and catalog, and starts partition maintenance. */
  async initialize(): Promise<void> {
    await this.cluster.ready();
    if (this.partitioned.length > 0) this.partitionManager.start();
  }

  /**
   * Runs `fn` with reads on replicas (eventual consistency); writes inside still go to the
   * primary. With `{ consistencyRequired: true }` its reads are 'strong' (on the primary: they
   * see every committed write).
   */
  read<T>(fn: (db: pg.Pool) => T, options: ReadOptions = {}): InScope<T> {
    if (options.consistencyRequired)
      return this.cluster.withConsistency('strong', () => fn(this.cluster.pool));
    return this.cluster.replica(() => fn(this.cluster.pool));
  }

  /** Runs `fn` with every statement on the primary. */
  write<T>(fn: (db: pg.Pool) => T): InScope<T> {
    return this.cluster.primary(() => fn(this.cluster.pool));
  }

  analyzeQuery(sql: string, params?: readonly unknown[]): Promise<QueryAnalysis> {
    return this.cluster.analyzeQuery(sql, params);
  }

  slowQueryReport(): SlowQueryReport {
    return this.cluster.slowQueries();
  }

  /**
   * Index advice from the catalog and the captured slow-query plans (missing, duplicate,
   * unused, invalid, bloated indexes, foreign keys without one), read on the primary; with
   * `apply`, builds the high-priority ones concurrently under an advisory lock; with
   * `rebuildBloated`, rebuilds the bloated ones (REINDEX CONCURRENTLY).
   */
  async optimizeIndexes(options: OptimizeIndexesOptions = {}): Promise<IndexOptimization> {
    await this.cluster.ready();
    const lease = await this.cluster.acquire('primary');
    try {
      const report = await adviseIndexes(lease.client, {
        ...(options.tables ? { tables: options.tables } : {}),
        ...(options.schema ? { schema: options.schema } : {}),
        ...(options.bloatThresholdPercent === undefined
          ? {}
          : { bloatThresholdPercent: options.bloatThresholdPercent }),
        slowQueries: this.cluster.slowQueries().queries,
      });
      const applied = options.apply
        ? await applyRecommendations(lease.client, report.recommendations, {
            priorityThreshold: options.priorityThreshold ?? 4,
          })
        : [];
      const rebuilt = options.rebuildBloated
        ? await rebuildBloatedIndexes(lease.client, report.bloated)
        : [];
      lease.release();
      return { ...report, applied, rebuilt };
    } catch (err) {
      lease.release(true);
      throw err;
    }
  }

  /**
   * REINDEX INDEX CONCURRENTLY on the primary, under the table's advisory lock (a bloated or
   * invalid index from `optimizeIndexes()`); 'locked' when another instance holds it.
   */
  async rebuildIndex(
    schema: string,
    name: string,
    options: MaintenanceOptions = {},
  ): Promise<RebuildResult> {
    await this.cluster.ready();
    const lease = await this.cluster.acquire('primary');
    try {
      const result = await rebuildIndex(lease.client, schema, name, options);
      lease.release();
      return result;
    } catch (err) {
      lease.release(true);
      throw err;
    }
  }

  /**
   * Checks a partitioned table against `strategy`, premakes its partitions and keeps it
   * maintained. With `{ migrate: true }` a plain table is first converted online (rows copied in
   * batches while writes continue, then a short swap; `result.migration` has the figures and
   * the partition sizes).
   */
  async setupPartitioning(
    strategy: PartitionStrategy,
    options: SetupOptions = {},
  ): Promise<SetupResult> {
    await this.cluster.ready();
    const result = await this.partitionManager.setup(strategy, options);
    this.partitioned.push({ schema: result.schema, table: result.table });
    this.partitionManager.start();
    return result;
  }

  /** One maintenance pass now (premake and retention), under the advisory lock. */
  maintainPartitions(): Promise<MaintenanceReport> {
    return this.partitionManager.maintain();
  }

  /**
   * Nodes, routing, replication, slow queries, index advice, partitions, per-node connection
   * usage / cache hit ratio / xid age, table statistics, lock contention, long transactions and
   * the alerts firing, in one report. Node figures are read on each reachable node, the rest on
   * the primary.
   */
  async analyzeDatabaseHealth(options: HealthReportOptions = {}): Promise<DatabaseHealthReport> {
    await this.cluster.ready();
    const stats = this.cluster.stats();
    const longMs =
      options.longTransactionMs ?? this.cluster.config.monitoring.thresholds.longTransactionMs;
    const perNode = await Promise.all(
      this.cluster.nodes.map(async (node) => {
        if (!node.health.up) return { node: node.name, error: node.health.lastError ?? 'down' };
        try {
          const lease = await this.cluster.acquire(node.name);
          try {
            const figures = await readNodeFigures(lease.client, node.name);
            lease.release();
            return figures;
          } catch (err) {
            lease.release(true);
            throw err;
          }
        } catch (err) {
          return { node: node.name, error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    const lease = await this.cluster.acquire('primary');
    try {
      const partitions: PartitionReport[] = [];
      const tablesToReport = uniqueTables([
        ...this.partitioned,
        ...(await listPartitionedTables(lease.client)),
      ]);
      for (const { schema, table } of tablesToReport) {
        partitions.push(await partitionReport(lease.client, schema, table));
      }
      const indexes =
        options.indexes === false
          ? undefined
          : await adviseIndexes(lease.client, { slowQueries: this.cluster.slowQueries().queries });
      const tables = await readTableStats(lease.client, options.tableLimit ?? 50);
      const locks = await readLockContention(lease.client);
      const longTransactions = await readLongTransactions(lease.client, longMs);
      lease.release();
      return {
        generatedAt: new Date().toISOString(),
        nodes: stats.nodes,
        routing: stats.routing,
        replication: stats.nodes
          .filter((n) => n.role === 'replica')
          .map((n) => ({
            node: n.name,
            up: n.up,
            lagMs: n.lagMs,
            lagBytes: n.lagBytes,
            lagging: n.lagging,
          })),
        slowQueries: this.cluster.slowQueries(),
        indexes,
        partitions,
        nodeFigures: perNode.filter((f): f is NodeFigures => 'connections' in f),
        unreachable: perNode.filter(
          (f): f is { node: string; error: string } => 'error' in f && !('connections' in f),
        ),
        tables,
        locks,
        longTransactions,
        alerts: this.cluster.alerts(),
      };
    } catch (err) {
      lease.release(true);
      throw err;
    }
  }

  /** Stops maintenance; closes the cluster when this service created it. */
  async close(): Promise<void> {
    await this.partitionManager.stop();
    if (this.ownsCluster) await this.cluster.close();
  }
}

function uniqueTables(tables: readonly { schema: string; table: string }[]) {
  const seen = new Map<string, { schema: string; table: string }>();
  for (const t of tables) seen.set(`${t.schema}\0${t.table}`, t);
  return [...seen.values()];
}
