import { adviseIndexes } from '../advisors/index.js';
import type { PlanFinding, PlanNode } from '../analysis/index.js';
import type { CacheStats } from '../cache/index.js';
import type { Cluster } from '../cluster/index.js';
import {
  type Alert,
  type DownReason,
  diagnoseConnectionError,
  listPartitionedTables,
} from '../monitoring/index.js';
import { type PartitionReport, partitionReport } from '../partitioning/index.js';

/** One node as the page shows it. */
export interface DashboardNode {
  readonly name: string;
  readonly role: string;
  readonly up: boolean;
  readonly downReason?: DownReason;
  readonly lagMs: number | null;
  readonly lagBytes: number | null;
  readonly lagging: boolean;
  readonly breaker: string;
  readonly inFlight: number;
  readonly latencyMs: number;
  readonly pool: {
    readonly inUse: number;
    readonly idle: number;
    readonly max: number;
    readonly waiting: number;
  };
  readonly queries: number;
}

/** A plan node reduced to what the tree shows. */
export interface PlanTreeNode {
  readonly type: string;
  readonly relation?: string;
  readonly index?: string;
  readonly cost?: number;
  readonly rows?: number;
  readonly children: readonly PlanTreeNode[];
}

export interface DashboardSlowQuery {
  readonly fingerprint: string;
  /** Normalized: literals are `$n`. */
  readonly query: string;
  readonly calls: number;
  readonly meanMs: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  readonly nodes: Readonly<Record<string, number>>;
  readonly plan?: PlanTreeNode;
  readonly findings: readonly Pick<PlanFinding, 'kind' | 'severity' | 'message' | 'suggestion'>[];
}

export interface DashboardAdvice {
  readonly table: string;
  readonly columns: readonly string[];
  readonly priority: number;
  readonly reason: string;
  readonly ddl: string;
}

/**
 * One update of the live page: nodes, routing, alerts, slow queries and partitions, as sent over
 * server-sent events.
 */
export interface DashboardSnapshot {
  readonly at: number;
  readonly nodes: readonly DashboardNode[];
  /** Statements routed per reason since start. */
  readonly routing: Readonly<Record<string, number>>;
  /** The query result cache's figures (hit ratio, entries, bytes...); absent without a cache. */
  readonly cache?: CacheStats;
  readonly alerts: { readonly firing: readonly Alert[]; readonly recent: readonly Alert[] };
  readonly slowQueries: readonly DashboardSlowQuery[];
  /** Refreshed on their own, slower cadence (they read the catalog). */
  readonly indexAdvice: readonly DashboardAdvice[];
  readonly partitions: readonly PartitionReport[];
  readonly catalogAt: number | null;
  readonly catalogError?: string;
}

const MAX_DEPTH = 12;

function planTree(node: PlanNode, depth = 0): PlanTreeNode {
  const children = (node.Plans ?? []) as readonly PlanNode[];
  return {
    type: node['Node Type'],
    ...(node['Relation Name'] ? { relation: node['Relation Name'] } : {}),
    ...(node['Index Name'] ? { index: node['Index Name'] } : {}),
    ...(typeof node['Total Cost'] === 'number' ? { cost: node['Total Cost'] } : {}),
    ...(typeof node['Plan Rows'] === 'number' ? { rows: node['Plan Rows'] } : {}),
    children: depth >= MAX_DEPTH ? [] : children.map((c) => planTree(c, depth + 1)),
  };
}

/**
 * What the dashboard shows, from the cluster's own state (cheap: no I/O), plus index advice
 * and partition sizes read on the primary at most once per `catalogEveryMs`.
 */
export class SnapshotSource {
  private catalog: Pick<DashboardSnapshot, 'indexAdvice' | 'partitions' | 'catalogAt'> & {
    catalogError?: string;
  } = { indexAdvice: [], partitions: [], catalogAt: null };
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly catalogEveryMs: number,
  ) {}

  snapshot(): DashboardSnapshot {
    const at = Date.now();
    if (
      !this.refreshing &&
      (this.catalog.catalogAt === null || at - this.catalog.catalogAt >= this.catalogEveryMs)
    ) {
      this.refreshing = this.refreshCatalog().finally(() => {
        this.refreshing = undefined;
      });
    }
    const stats = this.cluster.stats();
    return {
      at,
      nodes: this.cluster.nodes.map((node, i) => {
        const s = stats.nodes[i]!;
        return {
          name: s.name,
          role: s.role,
          up: s.up,
          ...(s.up
            ? {}
            : {
                downReason: diagnoseConnectionError(new Error(node.health.lastError ?? 'no answer'))
                  .reason,
              }),
          lagMs: s.lagMs === undefined ? null : Math.round(s.lagMs),
          lagBytes: s.lagBytes ?? null,
          lagging: s.lagging,
          breaker: s.breaker,
          inFlight: s.inFlight,
          latencyMs: Math.round(s.latencyMs * 10) / 10,
          pool: {
            inUse: s.pool.inUse,
            idle: s.pool.idle,
            max: s.pool.max,
            waiting: s.pool.waiting,
          },
          queries: s.counters.queries,
        };
      }),
      routing: stats.routing,
      ...(this.cluster.cache.enabled ? { cache: this.cluster.cache.stats() } : {}),
      alerts: {
        firing: this.cluster.alerts(),
        recent: this.cluster.alerts({ history: true }).slice(-30),
      },
      slowQueries: this.cluster
        .slowQueries()
        .queries.slice(0, 20)
        .map((q) => ({
          fingerprint: q.fingerprint,
          query: q.query,
          calls: q.calls,
          meanMs: Math.round(q.meanMs),
          p95Ms: Math.round(q.p95Ms),
          maxMs: Math.round(q.maxMs),
          nodes: q.nodes,
          ...(q.plan ? { plan: planTree(q.plan.plan.Plan) } : {}),
          findings: (q.plan?.findings ?? []).map((f) => ({
            kind: f.kind,
            severity: f.severity,
            message: f.message,
            suggestion: f.suggestion,
          })),
        })),
      ...this.catalog,
    };
  }

  /** Waits for a catalog refresh in flight (tests, shutdown). */
  async settle(): Promise<void> {
    await this.refreshing;
  }

  private async refreshCatalog(): Promise<void> {
    try {
      const lease = await this.cluster.acquire('primary');
      try {
        const report = await adviseIndexes(lease.client, {
          slowQueries: this.cluster.slowQueries().queries,
        });
        const partitions: PartitionReport[] = [];
        for (const { schema, table } of await listPartitionedTables(lease.client))
          partitions.push(await partitionReport(lease.client, schema, table));
        lease.release();
        this.catalog = {
          indexAdvice: report.recommendations.map((r) => ({
            table: `${r.schema}.${r.table}`,
            columns: r.columns,
            priority: r.priority,
            reason: r.reason,
            ddl: r.sql,
          })),
          partitions,
          catalogAt: Date.now(),
        };
      } catch (err) {
        lease.release(true);
        throw err;
      }
    } catch (err) {
      this.catalog = {
        ...this.catalog,
        catalogAt: Date.now(),
        catalogError: err instanceof Error ? err.message : String(err),
      };
    }
  }
}
