import type pg from 'pg';
import type { BalancerCandidate } from '../balancing/index.js';
import { Ewma } from '../balancing/index.js';
import type { NodeConfig } from '../config/index.js';
import type { NodeLabel, NodeRole } from '../errors/index.js';
import {
  type BreakerState,
  type CircuitBreaker,
  initialHealth,
  type NodeHealth,
} from '../health/index.js';
import type { NodePool, NodePoolFigures } from '../pool/index.js';

export interface NodeCounters {
  /** Statements this node served (one per round trip, retries counted again). */
  queries: number;
  reads: number;
  writes: number;
  /** Statements that failed, for any reason. */
  errors: number;
  /** Failures that said the node was unavailable (they feed the breaker). */
  availabilityErrors: number;
}

/** One node in `cluster.stats()`: role, health, lag, breaker, pool figures and counters. */
export interface NodeStats {
  readonly name: string;
  readonly role: NodeRole;
  readonly host: string;
  readonly port: number;
  readonly breaker: BreakerState;
  readonly inFlight: number;
  readonly latencyMs: number;
  readonly up: boolean;
  /**
   * A former primary after a failover: it gets neither writes nor reads until it follows the
   * elected primary again, whatever `role` says.
   */
  readonly fenced: boolean;
  /** What the last probe saw: true for a node that accepts writes (not in recovery). */
  readonly writable: boolean | undefined;
  readonly lagMs: number | undefined;
  readonly lagBytes: number | undefined;
  /**
   * Over the lag limit — or down: a node whose lag is not known is not reported as caught up
   * (lagMs and lagBytes are undefined then).
   */
  readonly lagging: boolean;
  readonly counters: Readonly<NodeCounters>;
  readonly pool: NodePoolFigures;
}

/**
 * One server as pgpulse sees it at run time: its pool, breaker, load and counters. Its role is
 * mutable because a failover changes it; everything else about its identity is fixed.
 */
export class ClusterNode implements BalancerCandidate, NodeLabel {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  role: NodeRole;
  /** Picks made by a balancer this turn of the event loop, not yet asking the pool. */
  private reserved = 0;
  private reservationsClear: NodeJS.Immediate | undefined;
  readonly counters: NodeCounters = {
    queries: 0,
    reads: 0,
    writes: 0,
    errors: 0,
    availabilityErrors: 0,
  };
  readonly breaker: CircuitBreaker;
  /** Written by the health monitor. */
  readonly health: NodeHealth = initialHealth();
  /**
   * Set after a failover on a former primary: it may come back writable, and must then get
   * neither writes nor reads until it is a standby of the elected primary again.
   */
  fenced = false;
  private readonly latency = new Ewma();
  /** Connections running a one-off read (not pinned to a caller) on this node right now. */
  private readonly oneOffReads = new Set<pg.Client>();

  constructor(
    readonly config: NodeConfig,
    readonly pool: NodePool,
    breaker: CircuitBreaker,
  ) {
    this.name = config.name;
    this.host = config.host;
    this.port = config.port;
    this.weight = config.weight;
    this.role = config.role;
    this.breaker = breaker;
  }

  /**
   * What the balancers weigh: connections leased from this node's pool (statements running,
   * pinned clients), acquires waiting for one, and picks not yet at the pool. Counted at the
   * decision, not once the connection is acquired: otherwise a burst of 200 statements all
   * see 0 and go to one node (issue #11).
   */
  get inFlight(): number {
    const { inUse, waiting } = this.pool.figures();
    return inUse + waiting + this.reserved;
  }

  /**
   * A balancer chose this node for a statement. The executor asks the pool within the same
   * turn of the event loop (from then on the pool's figures count it), so the pick is
   * forgotten at the next one.
   */
  reserve(): void {
    this.reserved++;
    this.reservationsClear ??= setImmediate(() => {
      this.reserved = 0;
      this.reservationsClear = undefined;
    });
  }

  get latencyEwmaMs(): number {
    return this.latency.value;
  }

  recordLatency(ms: number): void {
    this.latency.update(ms);
  }

  /** A one-off read started on `client` (the executor's, outside any pinned connection). */
  readStarted(client: pg.Client): void {
    this.oneOffReads.add(client);
  }

  readFinished(client: pg.Client): void {
    this.oneOffReads.delete(client);
  }

  /**
   * Cuts the connections of the one-off reads still waiting on this node (the health probes
   * found it unreachable): each fails with a connection error before any row came back, so
   * the executor's one read retry sends it to another node instead of leaving it waiting
   * for as long as the network stays partitioned. A pinned connection (a transaction, a
   * session) is never cut here: only its owner knows whether it can be retried.
   */
  abortOneOffReads(): number {
    const clients = [...this.oneOffReads];
    this.oneOffReads.clear();
    for (const client of clients) {
      (
        client as unknown as { connection?: { stream?: { destroy(): void } } }
      ).connection?.stream?.destroy();
    }
    return clients.length;
  }

  /**
   * One of pgpulse's own statements (promotion, identity, catalog reads) on a connection of
   * this node's pool, outside any caller's scope: the connection goes back on success and is
   * destroyed on failure, when its state is unknown.
   */
  async queryOnce<R extends pg.QueryResultRow>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<R[]> {
    const connection = await this.pool.acquire();
    try {
      const { rows } = await connection.client.query<R>(sql, params ? [...params] : undefined);
      connection.release();
      return rows;
    } catch (err) {
      connection.release(true);
      throw err;
    }
  }

  stats(): NodeStats {
    return {
      name: this.name,
      role: this.role,
      host: this.host,
      port: this.port,
      breaker: this.breaker.state,
      inFlight: this.inFlight,
      latencyMs: Math.round(this.latency.value * 1000) / 1000,
      up: this.health.up,
      fenced: this.fenced,
      writable: this.health.lastProbe === undefined ? undefined : !this.health.lastProbe.inRecovery,
      lagMs: this.health.lagMs === undefined ? undefined : Math.round(this.health.lagMs),
      lagBytes: this.health.lagBytes,
      lagging: this.health.up ? this.health.lagging : true,
      counters: { ...this.counters },
      pool: this.pool.figures(),
    };
  }

  toJSON(): NodeLabel & { weight: number } {
    return {
      name: this.name,
      role: this.role,
      host: this.host,
      port: this.port,
      weight: this.weight,
    };
  }
}
