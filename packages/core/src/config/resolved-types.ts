import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type pg from 'pg';
import type { LoadBalancingStrategy } from '../balancing/index.js';
import type { NodeLabel, NodeRole } from '../errors/index.js';
import type { PoolerMode, SslOption } from './node-types.js';
import type * as option from './option-values.js';
import type { ServerSettings } from './server-settings.js';
import type { MonitoringThresholds } from './types.js';

// What the rest of pgpulse reads: the configuration with every default applied.

/**
 * One resolved node. `password` and `ssl` are readable but are never enumerated, serialised
 * or inspected (JSON.stringify, util.inspect and console.log show `'***'`), so a node or a
 * config can be logged safely. Build pg options with `nodeConnectionOptions(node)` rather than
 * passing or spreading the node itself: a spread copy has no password and no TLS settings.
 */
export interface NodeConfig extends NodeLabel {
  readonly name: string;
  readonly role: NodeRole;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password?: string;
  readonly ssl?: SslOption;
  readonly weight: number;
  /** The top-level settings merged with the node's own, sent with every connection. */
  readonly settings: ServerSettings;
  /** The node's `pooler`, else the top-level one: `'transaction'` or `'none'`. */
  readonly pooler: PoolerMode;
}

export interface ResolvedPoolConfig {
  /** Kept open and warm: idle connections are not closed below this. */
  readonly minSize: number;
  /** Open minSize connections ahead of demand and replace recycled ones (false: pg's `min`). */
  readonly warm: boolean;
  /** Steady-state maximum of open connections per node. */
  readonly maxSize: number;
  /** Extra connections allowed under burst; closed as soon as they go idle. */
  readonly overflow: number;
  /** Total time an acquire may wait (queueing + connecting + pre-ping) before PoolTimeoutError. */
  readonly acquireTimeoutMs: number;
  /** Limit of one TCP + start-up attempt (pg's connectionTimeoutMillis). */
  readonly connectTimeoutMs: number;
  /** Idle connections above minSize are closed after this; 0 = never. */
  readonly idleTimeoutMs: number;
  /** Round-trip check of a connection that sat idle longer than prePingAfterIdleMs. */
  readonly prePing: boolean;
  readonly prePingAfterIdleMs: number;
  /** Connections older than this (± jitter) are closed instead of reused; null = never. */
  readonly recycleSeconds: number | null;
  /** 0..1: each connection lives recycleSeconds * (1 ± recycleJitter * random). */
  readonly recycleJitter: number;
  /** A connection is closed after serving this many checkouts; 0 = never. */
  readonly maxUses: number;
  readonly statementTimeoutMs: number;
  /** Idle connections do not hold the process open. */
  readonly exitOnIdle: boolean;
  /** How `pool.connect()` clients hold connections: per transaction (default), session, statement. */
  readonly pooling: option.PoolingMode;
  /** What a returning connection is cleared of (see ResetOnRelease). */
  readonly resetOnRelease: option.ResetOnRelease;
  /** Binary results on the application's connections. */
  readonly binary: boolean;
  /** The application's connections pipeline statements (pg's `pipeline`). */
  readonly pipeline: boolean;
  /** The class of the application's connections; absent: pg.Client. */
  readonly Client?: typeof pg.Client;
}

export interface ResolvedCircuitBreakerConfig {
  readonly failureThreshold: number;
  readonly resetTimeoutMs: number;
  readonly jitter: number;
}

export interface ResolvedHealthConfig {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxConsecutiveFailures: number;
  readonly positionCheckMs: number;
}

export interface ResolvedReplicaLagConfig {
  /** null = no time limit. */
  readonly maxLagMs: number | null;
  /** null = no byte limit. */
  readonly maxLagBytes: number | null;
  readonly policy: option.LagPolicy;
  readonly hysteresis: number;
}

export interface ResolvedConsistencyConfig {
  readonly level: option.ConsistencyLevel;
  readonly mode: option.ConsistencyMode;
  readonly windowMs: number;
  readonly waitMs: number;
}

export interface ResolvedFailoverConfig {
  readonly promotion: option.PromotionStrategy;
  readonly writeWaitMs: number;
  readonly coordinator: ResolvedEtcdCoordinatorConfig | undefined;
}

export interface ResolvedEtcdCoordinatorConfig {
  readonly type: 'etcd';
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly leaseTtlSeconds: number;
  readonly timeoutMs: number;
}

export interface ResolvedRoutingConfig {
  readonly volatileFunctions: readonly string[];
  readonly allowFunctions: readonly string[];
  /** Compiled at start-up so a bad pattern fails there, not on the first query. */
  readonly forcePrimaryPatterns: readonly RegExp[];
  readonly detectCatalogVolatile: boolean;
  readonly catalogRefreshMs: number;
}

export interface ResolvedSlowQueryConfig {
  readonly thresholdMs: number;
  readonly explain: boolean;
  readonly explainAnalyze: boolean;
  readonly captureParams: boolean;
  readonly minExplainIntervalMs: number;
  readonly queueSize: number;
  readonly maxBytes: number;
}

export interface ResolvedTelemetryConfig {
  readonly enabled: boolean;
  readonly tracerProvider?: TracerProvider;
  readonly meterProvider?: MeterProvider;
  readonly pgInstrumentation: 'suppress' | 'nest';
}

export interface ResolvedMonitoringConfig {
  readonly enabled: boolean;
  readonly intervalMs: number;
  readonly cooldownMs: number;
  readonly thresholds: Readonly<Required<MonitoringThresholds>>;
  readonly webhook?: ResolvedWebhookConfig;
}

/** Where alerts are POSTed, and how hard to try. */
export interface ResolvedWebhookConfig {
  readonly url: string;
  /** Sent with every POST (e.g. an authorization header); never part of the payload. */
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** Further attempts after a failed one (a network error or a non-2xx answer). */
  readonly retries: number;
  /** Wait before the first retry; doubled for each further one. */
  readonly backoffMs: number;
  /** Alerts waiting to be sent; past it the oldest is dropped (counted). */
  readonly queueSize: number;
}

export interface ResolvedCacheConfig {
  readonly enabled: boolean;
  readonly maxBytes: number;
  readonly defaultTtlMs: number;
  readonly maxEntryBytes: number;
  readonly channel: string | false;
  readonly unsubscribedMaxAgeMs: number;
}

export interface ResolvedPreparedStatementsConfig {
  readonly enabled: boolean;
  readonly maxPerConnection: number;
}

/** The configuration with every default applied; deeply frozen. */
export interface ResolvedConfig {
  readonly primary: NodeConfig;
  readonly replicas: readonly NodeConfig[];
  readonly pool: ResolvedPoolConfig;
  readonly loadBalancing: LoadBalancingStrategy;
  readonly readWriteSplit: boolean;
  readonly circuitBreaker: ResolvedCircuitBreakerConfig;
  readonly health: ResolvedHealthConfig;
  readonly replicaLag: ResolvedReplicaLagConfig;
  readonly consistency: ResolvedConsistencyConfig;
  readonly failover: ResolvedFailoverConfig;
  readonly routing: ResolvedRoutingConfig;
  readonly slowQuery: ResolvedSlowQueryConfig;
  readonly telemetry: ResolvedTelemetryConfig;
  readonly monitoring: ResolvedMonitoringConfig;
  readonly cache: ResolvedCacheConfig;
  readonly preparedStatements: ResolvedPreparedStatementsConfig;
  readonly applicationName: string;
}
