import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type pg from 'pg';
import type { LoadBalancingStrategy } from '../balancing/index.js';
import type { NodeRole } from '../errors/index.js';
import type { NodeInput, PoolerMode, ReplicaInput } from './node-types.js';
import type {
  ConsistencyLevel,
  ConsistencyMode,
  LagPolicy,
  PoolingMode,
  PromotionStrategy,
  ResetOnRelease,
} from './option-values.js';
import type { ServerSettings } from './server-settings.js';

export type { LoadBalancingStrategy, NodeRole };

// ---------------------------------------------------------------------------------------------
// What users write (the nodes are in node-types.ts, the enumerated values in option-values.ts,
// what the rest of pgpulse reads in resolved-types.ts). scripts/config-reference.ts generates
// the README's reference from PgPulseConfig's doc comments, following these imports.
// ---------------------------------------------------------------------------------------------

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
   * pgpulse's own statements on them (EXPLAIN capture) still read text. pg itself reads binary
   * fields through a UTF-8 string, which corrupts bytes it cannot carry (pg 8.23.1:
   * `1000::int4` reads as 1007; node-postgres issue #3495): passed through as pg.Pool does,
   * but do not use it for data until pg reads binary fields as bytes.
   */
  binary?: boolean;
  /**
   * Pipeline the application's connections (pg's `pipeline`, pg >= 8.23); default false.
   * Inside a transaction a checked-out client sends statements issued together without
   * waiting for each answer; elsewhere each statement is routed on its own, one at a time.
   * Automatic prepared statements are off on a pipelined pool; cursors and streams are
   * refused by pg on a pipelined connection.
   */
  pipeline?: boolean;
  /**
   * The class of the application's connections (pg.Pool's `Client`): pg.Client, a class
   * extending it (an instrumented or extended client), or a look-alike constructor, called as
   * pg.Pool calls it: `new Client(config)` with pgpulse's resolved connection fields for each
   * node (host, port, user, database, ...), then `connect(callback)`. A failed connect's error
   * is passed on unchanged. A connected instance without pg's protocol stream
   * (`client.connection` with its parser events) is ended and its connect fails with a
   * ConfigError naming pool.Client: pgpulse reads each connection's protocol messages
   * (transaction status, reported settings). pg.native is refused up front. Health probes
   * keep pg.Client.
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
