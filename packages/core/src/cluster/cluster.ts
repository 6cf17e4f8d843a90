import { EventEmitter } from 'node:events';
import { createBalancer } from '../balancing/index.js';
import {
  type ConsistencyLevel,
  nodeConnectionOptions,
  type PgPulseConfig,
  parseConfig,
  type ResolvedConfig,
} from '../config/index.js';
import { runInScope } from '../context/index.js';
import type { BreakerState } from '../health/index.js';
import { CircuitBreaker } from '../health/index.js';
import { NodePool } from '../pool/index.js';
import {
  CATALOG_VOLATILE_SQL,
  type Classification,
  type Classifier,
  createClassifier,
  Executor,
  isParserLoaded,
  loadParser,
  Router,
  RoutingPool,
  type RoutingReason,
  StatementPolicy,
} from '../routing/index.js';
import { ClusterNode, type NodeStats, trackTransactionStatus } from '../topology/index.js';

export interface ClusterStats {
  readonly nodes: readonly NodeStats[];
  /** How many statements were routed for each reason since start. */
  readonly routing: Readonly<Record<string, number>>;
  readonly classifierCacheSize: number;
}

export interface RouteExplanation {
  readonly classification: Classification;
  readonly target: 'primary' | 'replica';
  readonly reason: RoutingReason;
}

export interface ClusterEvents {
  breaker: [{ node: string; from: BreakerState; to: BreakerState }];
  /** A connection-level error on an idle pooled connection (already handled; for logging). */
  'connection-error': [{ node: string; error: Error }];
}

/** How often to retry reading the catalog's volatile functions after a failure. */
const CATALOG_RETRY_MS = 5_000;

/**
 * A primary and its replicas behind one pg.Pool-compatible `pool`. Create it with
 * `createCluster(config)`; hand `cluster.pool` to your ORM.
 */
export class Cluster extends EventEmitter<ClusterEvents> {
  readonly config: ResolvedConfig;
  readonly pool: RoutingPool;
  readonly nodes: readonly ClusterNode[];
  private readonly router: Router;
  private readonly classifier: Classifier;
  private readonly policy: StatementPolicy;
  private readonly reasons = new Map<RoutingReason, number>();
  private readiness: Promise<void> | undefined;
  private isReady = false;
  private catalogTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(config: ResolvedConfig) {
    super();
    this.config = config;
    this.nodes = [config.primary, ...config.replicas].map((nodeConfig) => {
      const pool = new NodePool(nodeConfig, nodeConnectionOptions(nodeConfig), {
        ...config.pool,
        applicationName: config.applicationName,
      });
      pool.onConnect = trackTransactionStatus;
      pool.onError = (error) => {
        if (this.listenerCount('connection-error') > 0)
          this.emit('connection-error', { node: nodeConfig.name, error });
      };
      const breaker = new CircuitBreaker({
        ...config.circuitBreaker,
        onStateChange: (from, to) => this.emit('breaker', { node: nodeConfig.name, from, to }),
      });
      return new ClusterNode(nodeConfig, pool, breaker);
    });
    this.classifier = createClassifier({
      volatileFunctions: config.routing.volatileFunctions,
      allowFunctions: config.routing.allowFunctions,
    });
    this.policy = new StatementPolicy(config.routing);
    this.router = new Router(this.nodes, createBalancer(config.loadBalancing), this.policy, {
      readWriteSplit: config.readWriteSplit,
      lagPolicy: config.replicaLag.policy,
    });
    const executor = new Executor(
      this.router,
      this.classifier,
      { routed: (reason) => this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1) },
      () => (this.isReady ? undefined : this.ready()),
    );
    this.pool = new RoutingPool(executor, config.pool.pooling, () => this.close());
  }

  /**
   * Loads the SQL parser, reads the catalog's volatile functions and warms every pool to
   * `pool.minSize`. Statements wait for it on their own; call it to fail fast at start-up.
   */
  ready(): Promise<void> {
    this.readiness ??= (async () => {
      await loadParser();
      await Promise.all([this.loadCatalog(), ...this.nodes.map((n) => n.pool.warm())]);
      this.isReady = true;
    })();
    return this.readiness;
  }

  /** Runs `fn` with every statement it makes, reads included, on the primary. */
  primary<T>(fn: () => T): T {
    return runInScope({ target: 'primary' }, fn);
  }

  /** Runs `fn` with reads on replicas even after its own writes (eventual consistency). */
  replica<T>(fn: () => T): T {
    return runInScope({ target: 'auto', consistency: 'eventual' }, fn);
  }

  /** Runs `fn` with the given consistency level for its reads. */
  withConsistency<T>(level: ConsistencyLevel, fn: () => T): T {
    return runInScope({ consistency: level }, fn);
  }

  /** Where a statement would go now and why, without running it. Needs `ready()` first. */
  explainRoute(sql: string): RouteExplanation {
    if (!isParserLoaded()) throw new Error('pgpulse: await cluster.ready() before explainRoute()');
    const classification = this.classifier.classify(sql);
    const { target, reason } = this.router.decide(classification, sql, undefined);
    return { classification, target, reason };
  }

  stats(): ClusterStats {
    return {
      nodes: this.nodes.map((n) => n.stats()),
      routing: Object.fromEntries(this.reasons),
      classifierCacheSize: this.classifier.cacheSize,
    };
  }

  /** Ends every pool; statements after this fail with ClusterClosedError. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.catalogTimer);
      if (!this.pool.isClosed) void this.pool.end();
      await Promise.all(this.nodes.map((n) => n.pool.end()));
    })();
    return this.closing;
  }

  toJSON(): unknown {
    return { nodes: this.nodes.map((n) => n.toJSON()), loadBalancing: this.config.loadBalancing };
  }

  private async loadCatalog(): Promise<void> {
    if (!this.config.routing.detectCatalogVolatile) return;
    const primary = this.router.primary();
    if (!primary) return;
    try {
      const connection = await primary.pool.acquire();
      try {
        const { rows } = await connection.client.query<{ schema: string; name: string }>(
          CATALOG_VOLATILE_SQL,
        );
        this.policy.setCatalogVolatile(rows.map((r) => `${r.schema}.${r.name}`));
        connection.release();
      } catch (err) {
        connection.release(err instanceof Error ? err : true);
        throw err;
      }
    } catch {
      // Until the catalog is known, reads that call functions go to the primary; try again.
      this.catalogTimer = setTimeout(() => void this.loadCatalog(), CATALOG_RETRY_MS);
      this.catalogTimer.unref();
    }
  }
}

/** Validates `config` (throwing a ConfigError that names each bad field) and builds a cluster. */
export function createCluster(config: PgPulseConfig): Cluster {
  return new Cluster(parseConfig(config));
}
