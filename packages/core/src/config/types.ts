import type { ConnectionOptions } from 'node:tls';
import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type pg from 'pg';
import type { LoadBalancingStrategy } from '../balancing/index.js';
import type { NodeLabel, NodeRole } from '../errors/index.js';
import type { ServerSettings } from './server-settings.js';

export type { LoadBalancingStrategy, NodeRole };

/** TLS settings handed to `tls.connect`; `true` means "TLS with default verification". */
export type SslOption = boolean | ConnectionOptions;

/**
 * When a checked-out client's connection returns to the pool: 'transaction' (the default) and
 * 'statement' after each statement or transaction (the two behave alike), 'session' only at
 * release(), so the client keeps one connection for its whole checkout.
 */
export type PoolingMode = 'transaction' | 'session' | 'statement';
/**
 * What a connection is cleared of when it returns to the pool, beyond what pgpulse already
 * does (settings the server reports changed, a transaction left open, session state seen in
 * the SQL: the connection is closed instead of reused).
 * - 'none': nothing more (default; no extra round trip).
 * - 'objects': what the server does not report and a function may leave behind: temporary
 *   tables, session advisory locks, open cursors, LISTEN channels, sequence state
 *   (`CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES`);
 *   settings and prepared statements are kept. One round trip per release.
 * - 'all': `DISCARD ALL` (also settings, including a 'connect' hook's, and prepared
 *   statements). One round trip per release.
 */
export type ResetOnRelease = 'none' | 'objects' | 'all';
/**
 * What a read does when no replica is within the lag limit: 'fallback' to the primary, the
 * 'least-lagged' replica, or an 'error'.
 */
export type LagPolicy = 'fallback' | 'least-lagged' | 'error';
/**
 * How fresh a read must be: 'eventual' (any healthy replica within the lag limit),
 * 'read-your-writes' (a replica that replayed the context's writes), 'strong' (the primary).
 */
export type ConsistencyLevel = 'eventual' | 'read-your-writes' | 'strong';
export type ConsistencyMode = 'lsn' | 'time-window';
/**
 * Who promotes a standby when the primary is lost: an 'external' HA manager (pgpulse follows),
 * pgpulse itself ('automatic'), pgpulse after an approval ('semi-automatic'), or a call to
 * failover() ('manual').
 */
export type PromotionStrategy = 'external' | 'automatic' | 'semi-automatic' | 'manual';

// ---------------------------------------------------------------------------------------------
// What users write
// ---------------------------------------------------------------------------------------------

/**
 * What sits between pgpulse and a node: `'none'` (a direct connection, or a session-mode
 * pooler) or `'transaction'` (a transaction-mode pooler such as PgBouncer).
 */
export type PoolerMode = 'none' | 'transaction';

/** A node given as an object instead of a URL. */
export interface NodeOptions {
  /** Host name, IP address, or a unix socket directory (starting with `/`). */
  host: string;
  /** Default 5432. */
  port?: number;
  /** Default: the user name (as libpq does). */
  database?: string;
  /** Default 'postgres'. */
  user?: string;
  /** Kept out of every object graph (logs, inspect, errors never show it). */
  password?: string;
  /** Label used in logs, metrics and errors; default 'primary', 'replica-1', 'replica-2', ... */
  name?: string;
  /** TLS: true, or tls.connect options (ca, cert, key, servername, ...); default off (URL: sslmode). */
  ssl?: SslOption;
  /**
   * Server settings for every connection to this node, sent at connect time (libpq's
   * `options`; a URL takes `?options=-c%20statement_timeout%3D5s`), over the top-level
   * `settings`. E.g. `{ statement_timeout: '5s', lock_timeout: 1000 }`.
   */
  settings?: ServerSettings;
  /**
   * libpq's `options` string for this node, e.g. `'-c statement_timeout=5s -c lock_timeout=1s'`
   * (the URL's `?options=`); parsed into settings, under this node's `settings`.
   */
  options?: string;
  /**
   * `'transaction'` when this node is reached through a transaction-mode pooler (PgBouncer
   * `pool_mode = transaction`, or the like): automatic prepared statements are off for it
   * (PgBouncer before 1.21 fails them with 42P05 / 26000), and a statement that changes
   * session state outside a transaction (SET without LOCAL, LISTEN, pg_advisory_lock, a temp
   * table, PREPARE, DECLARE ... WITH HOLD) is refused with SessionBehindPoolerError instead of
   * leaking to another client. Default: the top-level `pooler`, else `'none'`.
   */
  pooler?: PoolerMode;
}

export interface ReplicaOptions extends NodeOptions {
  /** Relative share of reads under `loadBalancing: 'weighted'`; default 1. */
  weight?: number;
}

/** `postgres://user:password@host:port/database?sslmode=require`, or the object form. */
export type NodeInput = string | NodeOptions;
export type ReplicaInput = string | ReplicaOptions;

export interface PoolOptions {
  /** Connections kept open even when idle; default 0. */
  minSize?: number;
  /**
   * Open minSize connections at start-up, and replace a recycled or spent one to keep minSize
   * open; default true. false is pg.Pool's `min`: idle connections within minSize are kept,
   * but none is opened ahead of a statement.
   */
  warm?: boolean;
  /** Connections per node; default 10. */
  maxSize?: number;
  /** Extra connections allowed above maxSize under burst, closed as soon as idle; default 0. */
  overflow?: number;
  /** How long a statement waits for a connection before PoolTimeoutError; default 10000. */
  acquireTimeoutMs?: number;
  /** TCP + start-up handshake limit for a new connection; default 5000. */
  connectTimeoutMs?: number;
  /** Idle connections above minSize are closed after this; default 30000 (0 = never). */
  idleTimeoutMs?: number;
  /** Check a connection with a round trip before use if it sat idle; default true. */
  prePing?: boolean;
  /** Only pre-ping connections idle for at least this long; default 5000. */
  prePingAfterIdleMs?: number;
  /** Close connections older than this; default 3600. 0 or null = never. */
  recycleSeconds?: number | null;
  /** Spread recycle ages by ±this fraction so connections do not all reconnect at once. */
  recycleJitter?: number;
  /** Close a connection after it served this many checkouts (pg's maxUses); default 0 = never. */
  maxUses?: number;
  /**
   * Per-statement deadline in ms (pg's query_timeout, enforced by pgpulse); 0 = none (default).
   * Past it the connection is closed (the server rolls back what it ran): a read is retried once
   * on another node, anything else fails with StatementTimeoutError (retriable).
   */
  statementTimeoutMs?: number;
  /**
   * Let the process exit while every connection is idle (pg.Pool's allowExitOnIdle); default
   * true. false keeps idle connections holding it open until idleTimeoutMs closes them.
   */
  exitOnIdle?: boolean;
  /** When a connection returns to the pool; default 'transaction'. */
  pooling?: PoolingMode;
  /** What a returning connection is cleared of (see ResetOnRelease); default 'none'. */
  resetOnRelease?: ResetOnRelease;
  /**
   * Ask for binary results on the application's connections (pg's `binary`); default false.
   * pgpulse's own statements on them (EXPLAIN capture) still read text.
   */
  binary?: boolean;
  /**
   * The class of the application's connections (pg.Pool's `Client`): pg.Client or a class
   * extending it (an instrumented or extended client), constructed with pgpulse's resolved
   * connection fields for each node. Health probes keep pg.Client. Anything else (pg.native, a
   * pg-native-like object) is refused: pgpulse reads each connection's protocol messages.
   */
  Client?: typeof pg.Client;
}

export interface CircuitBreakerConfigOptions {
  /** Consecutive availability errors (connect refused, reset, timeout) that open a node's breaker; default 5. */
  failureThreshold?: number;
  /** How long an open breaker keeps the node out before a trial; default 10 000. */
  resetTimeoutMs?: number;
  /** Spread of resetTimeoutMs (0..1) so nodes do not retry in step; default 0.2. */
  jitter?: number;
}

export interface HealthOptions {
  /** How often each node is probed (role, replay position, lag); default 1 000. */
  intervalMs?: number;
  /** A probe slower than this counts as failed; default 1 000. */
  timeoutMs?: number;
  /** Failed probes in a row before a node is marked down; default 3. */
  maxConsecutiveFailures?: number;
  /**
   * Least time between two on-demand replay-position checks; default 10, 0 = off. A read that
   * goes to the primary only because no replica is known to have replayed its context's writes
   * asks for the nodes' positions at once (one check in flight, one statement per node, on the
   * probe connections) instead of at the next probe round. With `consistency.waitMs` the read
   * waits for that check and goes to a replica that has replayed the writes; without, it stays
   * on the primary and the reads after it use what the check learned. A failed check changes no
   * node's health (only the periodic probes mark nodes down).
   */
  positionCheckMs?: number;
}

export interface ReplicaLagOptions {
  /** Replicas further behind than this (time) stop serving reads; null/absent = no limit. */
  maxLagMs?: number | null;
  /** Replicas further behind than this (WAL bytes) stop serving reads; null/absent = no limit. */
  maxLagBytes?: number | null;
  /** What to do when no replica qualifies; default 'fallback' (read from the primary). */
  policy?: LagPolicy;
  /** A replica that left for lag rejoins only below limit * (1 - hysteresis); default 0.2. */
  hysteresis?: number;
}

export interface ConsistencyOptions {
  /**
   * What a read may see: 'eventual' (any healthy replica), 'read-your-writes' (default: a
   * context sees its own writes) or 'strong' (the primary). Per context: `withConsistency`.
   */
  level?: ConsistencyLevel;
  /** How read-your-writes is decided: 'lsn' (default: replay positions) or 'time-window'. */
  mode?: ConsistencyMode;
  /** time-window mode: reads stay on the primary this long after a write; default 2000. */
  windowMs?: number;
  /**
   * How long a read may wait for a replica to catch up before falling back; default 0. The read
   * is woken by on-demand position checks (`health.positionCheckMs`) as well as probe rounds.
   */
  waitMs?: number;
}

/**
 * What happens when the primary is lost: who promotes a standby, how long writes wait for it, and
 * the coordinator that makes the promotion exclusive across instances.
 */
export interface FailoverOptions {
  /**
   * Who promotes a replica when the primary dies: 'external' (default: an HA manager such as
   * Patroni; pgpulse follows), 'automatic' (pgpulse, for a single app instance),
   * 'semi-automatic' (pgpulse after the 'failover-candidate' event's `approve()`), 'manual'.
   */
  promotion?: PromotionStrategy;
  /** How long a write waits for a new primary during failover; default 0 (fail fast). */
  writeWaitMs?: number;
  /**
   * For `promotion: 'automatic'` with several app instances: only the instance that holds the
   * coordinator's lease promotes, the others follow. Without it, `automatic` is for one instance.
   */
  coordinator?: EtcdCoordinatorOptions;
}

/** A leader lease in etcd (v3 API; needs the `etcd3` package installed beside pgpulse). */
export interface EtcdCoordinatorOptions {
  /** The coordination service holding the promotion lease ('etcd'). */
  type: 'etcd';
  /** etcd client endpoints, e.g. `['http://10.0.0.5:2379']`. */
  endpoints: readonly string[];
  /** Key prefix; default `/pgpulse`. Keys are `<prefix>/<system identifier>/...`. */
  prefix?: string;
  /** The lease's time to live: how long a holder that died blocks the others; default 10. */
  leaseTtlSeconds?: number;
  /** Bound on each call to etcd, ms; default 2000. */
  timeoutMs?: number;
}

export interface RoutingOptions {
  /** Extra functions to treat as volatile (reads calling them go to the primary). */
  volatileFunctions?: readonly string[];
  /** Functions the catalog marks volatile that are safe on a replica. */
  allowFunctions?: readonly string[];
  /** Statements whose text matches any of these go to the primary. Strings are compiled
   * case-insensitively. */
  forcePrimaryPatterns?: readonly (string | RegExp)[];
  /** Look up function volatility in pg_proc; default true. */
  detectCatalogVolatile?: boolean;
  /**
   * How often (ms) to check whether functions or views changed (a cheap signature of pg_proc
   * and pg_rewrite) and read them again; default 30 000, 0 turns the check off. DDL through
   * pgpulse and a replica's refusal refresh the catalog on their own.
   */
  catalogRefreshMs?: number;
}

export interface SlowQueryOptions {
  /** Statements at least this slow are recorded (default 500). */
  thresholdMs?: number;
  /** Capture EXPLAIN (FORMAT JSON) for slow statements, off the query path (default true). */
  explain?: boolean;
  /** EXPLAIN ANALYZE for provably read-only statements only, inside BEGIN READ ONLY ... ROLLBACK (default false). */
  explainAnalyze?: boolean;
  /** Keep parameter values in samples (default false: redacted). */
  captureParams?: boolean;
  /** At most one EXPLAIN per fingerprint per this interval (default 60 000). */
  minExplainIntervalMs?: number;
  /** Bounded EXPLAIN queue; what does not fit is counted as dropped (default 100). */
  queueSize?: number;
  /**
   * Memory bound of the slow-query side, in bytes (default 8 MiB): a quarter for the log's
   * entries, a quarter for queued EXPLAIN jobs' texts, half for captured plans. Least recently
   * seen entries and oldest plans go first; jobs that do not fit are counted as dropped.
   * Strings count 2 bytes per character (V8's worst case).
   */
  maxBytes?: number;
}

export interface TelemetryConfigOptions {
  /** Default true; spans and metrics go through @opentelemetry/api (no-ops without an SDK). */
  enabled?: boolean;
  /** Default: the global provider of @opentelemetry/api. */
  tracerProvider?: TracerProvider;
  /** Default: the global provider of @opentelemetry/api. */
  meterProvider?: MeterProvider;
  /** With @opentelemetry/instrumentation-pg installed: suppress its span (default) or nest it. */
  pgInstrumentation?: 'suppress' | 'nest';
}

/**
 * The limits over which monitoring raises an alert: connection usage, slow statements and
 * replication lag.
 */
export interface MonitoringThresholds {
  /** Client connections / max_connections, 0..1 (default 0.8). */
  connectionUsage?: number;
  /** A statement at least this slow fires `slow-query` (default 1 000). */
  slowQueryMs?: number;
  /** Replica lag in ms (default 10 000). */
  replicationLagMs?: number;
  /** An active transaction older than this (default 60 000). */
  longTransactionMs?: number;
  /** A session idle inside a transaction longer than this (default 60 000). */
  idleInTransactionMs?: number;
  /** A statement waiting for a lock longer than this (default 10 000). */
  lockWaitMs?: number;
  /** age(datfrozenxid) of the oldest database, in transactions (default 1 000 000 000). */
  xidAge?: number;
  /** Floor of the buffer cache hit ratio over an interval, 0..1 (default 0.9). */
  cacheHitRatio?: number;
}

/** Where alerts are POSTed as JSON: the URL, extra headers and the time limit of each delivery. */
export interface WebhookOptions {
  /** Receives one JSON POST `{ source: 'pgpulse', alert }` per transition. */
  url: string;
  /** E.g. an authorization header; sent, never put in the payload or printed. */
  headers?: Record<string, string>;
  /** Per attempt (default 5 000). */
  timeoutMs?: number;
  /** Further attempts after a failure (default 3). */
  retries?: number;
  /** Before the first retry, doubled each time (default 500). */
  backoffMs?: number;
  /** Alerts waiting to be sent; the oldest is dropped past it (default 100). */
  queueSize?: number;
}

/**
 * Alerts (`cluster.on('alert')`, `cluster.alerts()`). Off unless this section is given, since
 * it adds one monitoring query per node and interval.
 */
export interface MonitoringOptions {
  /** Default true once the section is given. */
  enabled?: boolean;
  /** How often thresholds are checked (default 10 000). */
  intervalMs?: number;
  /** A resolved alert does not fire again within this (default 60 000). */
  cooldownMs?: number;
  /** Alert thresholds (see below). */
  thresholds?: MonitoringThresholds;
  /** Where alerts are POSTed (off unless given). */
  webhook?: WebhookOptions;
}

/**
 * The query result cache (`cluster.cached()`, `/* pgpulse:cache ttl=30s *\/`). Off unless this
 * section is given; even then only reads that ask for it are cached.
 */
export interface CacheOptions {
  /** Default true once the section is given. */
  enabled?: boolean;
  /** Upper bound of the bytes all entries hold (estimated from the rows; default 64 MiB). */
  maxBytes?: number;
  /** TTL when the caller gives none (default 30 000). */
  defaultTtlMs?: number;
  /** A result larger than this is not cached (default 1 MiB, or maxBytes when smaller). */
  maxEntryBytes?: number;
  /**
   * LISTEN/NOTIFY channel on the primary through which instances tell each other the tables
   * they wrote (default 'pgpulse_cache'; one dedicated connection per instance). `false`: this
   * instance neither listens nor tells, so other instances' writes are bounded only by TTL.
   */
  channel?: string | false;
  /**
   * While the channel is not subscribed (start-up, a dropped connection, a failover), entries
   * older than this are not served (default 1000). Also the heartbeat bound: a subscription
   * whose heartbeat went unanswered this long counts as lost.
   */
  unsubscribedMaxAgeMs?: number;
}

/**
 * Automatic prepared statements: a statement text that recurs is prepared once per connection
 * and then sent by name, so the server skips parse and plan (see docs/prepared-statements.md).
 */
export interface PreparedStatementsOptions {
  /** Default false (see docs/benchmarks.md for the figures behind that). */
  enabled?: boolean;
  /**
   * Statements kept prepared on one connection (least recently used ones are deallocated
   * beyond this); default 100.
   */
  maxPerConnection?: number;
}

/** The configuration users write. Only `primary` is required (or libpq's PGHOST). */
export interface PgPulseConfig {
  /**
   * The primary: a URL or the object form. After a failover pgpulse follows the new one. A
   * libpq multi-host URL (`postgres://h1:5432,h2:5432/db?target_session_attrs=any`) lists every
   * node instead (no `replicas` then): the probes find which is the primary. Default: libpq's
   * environment (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE,
   * PGTARGETSESSIONATTRS); required when PGHOST is not set.
   */
  primary?: NodeInput;
  /** Streaming replicas that serve reads: URLs or the object form; default none. */
  replicas?: readonly ReplicaInput[];
  /** Per-node connection pools (see below). */
  pool?: PoolOptions;
  /** How reads are spread over eligible replicas; default 'round-robin'. */
  loadBalancing?: LoadBalancingStrategy;
  /** false sends everything to the primary (an escape hatch; replicas stay probed). */
  readWriteSplit?: boolean;
  /** When a failing node is taken out of rotation. */
  circuitBreaker?: CircuitBreakerConfigOptions;
  /** Health probes. */
  health?: HealthOptions;
  /** When a lagging replica stops serving reads. */
  replicaLag?: ReplicaLagOptions;
  /** What reads may see. */
  consistency?: ConsistencyOptions;
  /** What happens when the primary dies. */
  failover?: FailoverOptions;
  /** Which statements may go to a replica. */
  routing?: RoutingOptions;
  /** Slow-query capture with EXPLAIN plans. */
  slowQuery?: SlowQueryOptions;
  /** OpenTelemetry spans and metrics. */
  telemetry?: TelemetryConfigOptions;
  /** Alerts; off unless given. */
  monitoring?: MonitoringOptions;
  /** The query result cache; off unless given. */
  cache?: CacheOptions;
  /** Recurring statements prepared once per connection and executed by name. */
  preparedStatements?: PreparedStatementsOptions;
  /**
   * Sent as application_name; default 'pgpulse'. A node's own `settings.application_name`
   * (or `?application_name=` in its URL) wins for that node's query connections.
   */
  applicationName?: string;
  /**
   * Server settings for every connection to every node (a node's own `settings` win), sent at
   * connect time: `{ statement_timeout: '30s', idle_in_transaction_session_timeout: '60s' }`.
   * A session `SET` through `pool.query()` would reach one connection only; this reaches all.
   */
  settings?: ServerSettings;
  /**
   * libpq's `options` string for every node, e.g. `'-c statement_timeout=5s'`; parsed into
   * settings, under the top-level `settings` and each node's own `options` and `settings`.
   */
  options?: string;
  /**
   * `'transaction'` when every node is reached through a transaction-mode pooler (PgBouncer
   * `pool_mode = transaction`); a node's own `pooler` wins. See `NodeOptions.pooler`. Default
   * `'none'`.
   */
  pooler?: PoolerMode;
}

// ---------------------------------------------------------------------------------------------
// What the rest of pgpulse reads
// ---------------------------------------------------------------------------------------------

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
  readonly pooling: PoolingMode;
  /** What a returning connection is cleared of (see ResetOnRelease). */
  readonly resetOnRelease: ResetOnRelease;
  /** Binary results on the application's connections. */
  readonly binary: boolean;
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
  readonly policy: LagPolicy;
  readonly hysteresis: number;
}

export interface ResolvedConsistencyConfig {
  readonly level: ConsistencyLevel;
  readonly mode: ConsistencyMode;
  readonly windowMs: number;
  readonly waitMs: number;
}

export interface ResolvedFailoverConfig {
  readonly promotion: PromotionStrategy;
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
