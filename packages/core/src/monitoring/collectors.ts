import type { ResolvedMonitoringConfig } from '../config/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { Observation } from './alert.js';

/**
 * One round trip per node and interval, on a pooled connection of that node (never on a
 * statement's path). Every figure comes from pg_stat_activity, pg_stat_database and
 * pg_database; the monitoring connection itself is left out of the session figures.
 */
const NODE_SQL = `SELECT
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS used,
  current_setting('max_connections')::int AS max,
  COALESCE((SELECT extract(epoch FROM max(now() - xact_start)) * 1000 FROM pg_stat_activity
    WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()), 0)::float8 AS long_xact_ms,
  COALESCE((SELECT extract(epoch FROM max(now() - state_change)) * 1000 FROM pg_stat_activity
    WHERE state LIKE 'idle in transaction%'), 0)::float8 AS idle_xact_ms,
  COALESCE((SELECT extract(epoch FROM max(now() - query_start)) * 1000 FROM pg_stat_activity
    WHERE wait_event_type = 'Lock'), 0)::float8 AS lock_wait_ms,
  (SELECT max(age(datfrozenxid)) FROM pg_database)::int8::text AS xid_age,
  (SELECT sum(blks_hit) FROM pg_stat_database)::float8 AS blks_hit,
  (SELECT sum(blks_read) FROM pg_stat_database)::float8 AS blks_read`;

interface NodeRow {
  used: number;
  max: number;
  long_xact_ms: number;
  idle_xact_ms: number;
  lock_wait_ms: number;
  xid_age: string | null;
  blks_hit: number | null;
  blks_read: number | null;
}

/** Below this many block reads in a round, the hit ratio says nothing and is not judged. */
const MIN_BLOCKS = 1_000;

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const pct = (n: number): string => `${(n * 100).toFixed(1)} %`;

/** Reads the SQL-side figures of every reachable node and turns them into observations. */
export class SqlCollector {
  private readonly blocks = new Map<string, { hit: number; read: number }>();

  constructor(
    private readonly nodes: readonly ClusterNode[],
    private readonly config: ResolvedMonitoringConfig,
  ) {}

  async collect(): Promise<Observation[]> {
    const up = this.nodes.filter((node) => node.health.up && node.breaker.state !== 'open');
    const perNode = await Promise.all(up.map((node) => this.collectNode(node)));
    return perNode.flat();
  }

  private async collectNode(node: ClusterNode): Promise<Observation[]> {
    let row: NodeRow | undefined;
    try {
      const connection = await node.pool.acquire();
      try {
        const result = await connection.client.query<NodeRow>({
          text: NODE_SQL,
          query_timeout: this.config.intervalMs,
        } as { text: string });
        row = result.rows[0];
        connection.release();
      } catch (err) {
        connection.release(true);
        throw err;
      }
    } catch {
      // Unreachable or overloaded: its SQL alerts keep their state until it answers again.
      return [];
    }
    if (!row) return [];
    return this.observe(node, row);
  }

  private observe(node: ClusterNode, row: NodeRow): Observation[] {
    const t = this.config.thresholds;
    const name = node.name;
    const usage = row.max > 0 ? row.used / row.max : 0;
    const out: Observation[] = [
      {
        kind: 'connection-usage',
        node: name,
        value: usage,
        threshold: t.connectionUsage,
        breached: usage >= t.connectionUsage,
        message: `${name} uses ${row.used} of ${row.max} connections (${pct(usage)}, threshold ${pct(t.connectionUsage)})`,
      },
      {
        kind: 'long-transaction',
        node: name,
        value: row.long_xact_ms,
        threshold: t.longTransactionMs,
        breached: row.long_xact_ms >= t.longTransactionMs,
        message: `${name} has a transaction running for ${fmt(row.long_xact_ms)} ms (threshold ${fmt(t.longTransactionMs)} ms)`,
      },
      {
        kind: 'idle-in-transaction',
        node: name,
        value: row.idle_xact_ms,
        threshold: t.idleInTransactionMs,
        breached: row.idle_xact_ms >= t.idleInTransactionMs,
        message: `${name} has a session idle in a transaction for ${fmt(row.idle_xact_ms)} ms (threshold ${fmt(t.idleInTransactionMs)} ms)`,
      },
      {
        kind: 'lock-wait',
        node: name,
        value: row.lock_wait_ms,
        threshold: t.lockWaitMs,
        breached: row.lock_wait_ms >= t.lockWaitMs,
        message: `${name} has a statement waiting for a lock for ${fmt(row.lock_wait_ms)} ms (threshold ${fmt(t.lockWaitMs)} ms)`,
      },
    ];
    if (node.role === 'primary' && row.xid_age !== null) {
      const age = Number(row.xid_age);
      out.push({
        kind: 'xid-age',
        node: name,
        value: age,
        threshold: t.xidAge,
        breached: age >= t.xidAge,
        message: `${name}'s oldest unfrozen transaction ID is ${fmt(age)} transactions old (threshold ${fmt(t.xidAge)})`,
      });
    }
    const ratio = this.hitRatio(name, row);
    if (ratio !== undefined) {
      out.push({
        kind: 'cache-hit-ratio',
        node: name,
        value: ratio.ratio,
        threshold: t.cacheHitRatio,
        breached: ratio.judged && ratio.ratio < t.cacheHitRatio,
        message: `${name}'s buffer cache hit ratio is ${pct(ratio.ratio)} this interval (floor ${pct(t.cacheHitRatio)})`,
      });
    }
    return out;
  }

  /** The hit ratio since the previous round; not judged on fewer than MIN_BLOCKS reads. */
  private hitRatio(name: string, row: NodeRow): { ratio: number; judged: boolean } | undefined {
    if (row.blks_hit === null || row.blks_read === null) return undefined;
    const previous = this.blocks.get(name);
    this.blocks.set(name, { hit: row.blks_hit, read: row.blks_read });
    if (!previous) return undefined;
    const hit = row.blks_hit - previous.hit;
    const read = row.blks_read - previous.read;
    // A statistics reset makes the deltas negative: start over.
    if (hit < 0 || read < 0) return undefined;
    const total = hit + read;
    return { ratio: total === 0 ? 1 : hit / total, judged: total >= MIN_BLOCKS };
  }
}
