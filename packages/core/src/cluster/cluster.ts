import { EventEmitter } from 'node:events';
import { analyzeQuery, fingerprintQuery, type QueryAnalysis } from '../analysis/index.js';
import { createBalancer } from '../balancing/index.js';
import {
  ALL_TABLES,
  type CachedOptions,
  CacheLayer,
  type CacheStats,
  InvalidationChannel,
  ResultCache,
  runCached,
} from '../cache/index.js';
import {
  type ConsistencyLevel,
  nodeConnectionOptions,
  type PgPulseConfig,
  parseConfig,
  type ResolvedConfig,
} from '../config/index.js';
import { ConsistencyGuard } from '../consistency/index.js';
import {
  type ConsistencySession,
  currentScope,
  type InScope,
  runInScope,
} from '../context/index.js';
import {
  BadTokenError,
  ClusterClosedError,
  ConfigError,
  connectFailureOf,
  isDefinitiveConnectFailure,
  NodeConnectionError,
} from '../errors/index.js';
import {
  countInstances,
  createCoordinator,
  type FailoverCandidate,
  type FailoverCompleted,
  type FailoverCoordinator,
  FailoverManager,
  type FailoverStarted,
  identifyNode,
  promoteNode,
  type SeveralInstancesEvent,
  type SplitBrainEvent,
} from '../failover/index.js';
import {
  type BreakerState,
  CircuitBreaker,
  HealthMonitor,
  type Lsn,
  NodeProber,
  parseLsn,
} from '../health/index.js';
import { type Alert, Monitoring } from '../monitoring/index.js';
import { NodePool, type PooledConnection } from '../pool/index.js';
import { PreparedStatements, type PreparedStats } from '../prepared/index.js';
import {
  type Classification,
  type Classifier,
  createClassifier,
  Executor,
  FunctionCatalog,
  primaryCatalogQuery,
  Router,
  RoutingCounts,
  RoutingPool,
  type RoutingReason,
  readPipeline,
  type StatementListener,
  StatementObservers,
  StatementPolicy,
} from '../routing/index.js';
import { isParserLoaded, loadParser } from '../sql/index.js';
import { registeredMeterProvider, Telemetry } from '../telemetry/index.js';
import { ClusterNode, type NodeStats } from '../topology/index.js';
import { untraced } from '../tracing/index.js';
import { SlowQueries, type SlowQueryReport } from './slow-queries.js';

export type { SlowQueryReport };

/**
 * What `cluster.stats()` returns: per-node figures, routing decisions by reason, probe and alert
 * rounds, prepared statements.
 */
export interface ClusterStats {
  readonly nodes: readonly NodeStats[];
  /** How many statements were routed for each reason since start. */
  readonly routing: Readonly<Record<string, number>>;
  readonly classifierCacheSize: number;
  /** Health rounds completed. */
  readonly probeRounds: number;
  /** On-demand replay-position checks completed (see `health.positionCheckMs`). */
  readonly positionChecks: number;
  /** Monitoring (alert) rounds completed; 0 without `monitoring`. */
  readonly alertRounds: number;
  /** Automatic prepared statements: prepared, executed by name, re-prepared, deallocated. */
  readonly preparedStatements: PreparedStats;
}

/** What `cluster.middleware()` returns: the (req, res, next) shape Express, Connect and others use. */
export type ContextMiddleware = (
  req: { readonly headers: Readonly<Record<string, string | string[] | undefined>> },
  res: unknown,
  next: (err?: unknown) => void,
) => void;

/**
 * What `cluster.explainRoute(sql)` returns: how the statement was classified, where it would go and
 * why.
 */
export interface RouteExplanation {
  readonly classification: Classification;
  readonly target: 'primary' | 'replica';
  readonly reason: RoutingReason;
}

/**
 * The events a cluster emits, each with its payload: node and breaker changes, lag, failover, split
 * brain, alerts and errors.
 */
export interface ClusterEvents {
  breaker: [{ node: string; from: BreakerState; to: BreakerState }];
  'node-down': [{ node: string; role: string; error: string }];
  'node-up': [{ node: string; role: string }];
  lag: [{ node: string; over: boolean; lagMs: number | undefined; lagBytes: number | undefined }];
  'failover-started': [FailoverStarted];
  'failover-candidate': [FailoverCandidate];
  'failover-completed': [FailoverCompleted];
  'failover-failed': [{ error: Error }];
  /** Several nodes accept writes on the newest timeline: no write goes to any until one is left. */
  'split-brain': [SplitBrainEvent];
  /**
   * `promotion: 'automatic'` without `failover.coordinator` while other instances of this app
   * probe the same primary (without a listener, a process warning says so once).
   */
  'several-instances': [SeveralInstancesEvent];
  /** A connection-level error on an idle pooled connection (already handled; for logging). */
  'connection-error': [{ node: string; error: Error }];
  /** A replica refused a read as a write; it ran on the primary and is sent there from now on. */
  'replica-refused': [{ node: string; query: string; fingerprint: string }];
  /** `middleware()` got a malformed token header and treated it as absent (the value is not repeated). */
  'bad-token': [{ header: string; reason: string }];
  /** An alert fired or resolved (with `monitoring` configured); once per transition. */
  alert: [Alert];
}

/** `cluster.cache`: the query result cache's controls (inert when `cache` is not configured). */
export interface ClusterCache {
  /** True when the `cache` section is configured and enabled. */
  readonly enabled: boolean;
  /** Drops the entries that read any of `tables` (bare or schema-qualified names) or carry any of `tags`. */
  invalidate(what: {
    readonly tables?: readonly string[];
    readonly tags?: readonly string[];
  }): void;
  /** Drops every entry (on this instance only). */
  clear(): void;
  stats(): CacheStats;
  /**
   * True while this instance hears the other instances' writes (`cache.channel` LISTENed on
   * the current primary, heartbeat answered within `cache.unsubscribedMaxAgeMs`).
   */
  subscribed(): boolean;
  /** The channel's counts: subscriptions made, messages sent, messages heard from other instances. */
  channelStats(): { readonly subscriptions: number; readonly sent: number; readonly heard: number };
}

const EMPTY_CACHE_STATS: CacheStats = Object.freeze({
  hits: 0,
  misses: 0,
  bypasses: 0,
  entries: 0,
  bytes: 0,
  evictions: 0,
  invalidations: 0,
  hitRatio: 0,
});

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
  /**
   * Manual failover and the state of an automatic one; `candidate()` is the standby this
   * instance would promote now, by the rule every instance computes alike.
   */
  readonly failover: Pick<
    FailoverManager,
    'manual' | 'inProgress' | 'waitForPrimary' | 'candidate' | 'splitBrain'
  >;
  /** The query result cache (`cache` in the config): invalidate, clear, stats. */
  readonly cache: ClusterCache;
  private readonly results: ResultCache | undefined;
  private readonly prepared: PreparedStatements;
  private readonly channel: InvalidationChannel | undefined;
  private readonly router: Router;
  private readonly classifier: Classifier;
  private readonly policy: StatementPolicy;
  private readonly monitor: HealthMonitor;
  private readonly guard: ConsistencyGuard;
  private readonly failoverManager: FailoverManager;
  private readonly coordinator: FailoverCoordinator | undefined;
  private warnedInstances = false;
  private readonly probers: Map<ClusterNode, NodeProber>;
  private readonly reasons = new RoutingCounts();
  private readonly telemetry: Telemetry | undefined;
  private readonly slow: SlowQueries;
  private readonly monitoring: Monitoring | undefined;
  private readiness: Promise<void> | undefined;
  private isReady = false;
  private isVerified = false;
  private verifying: Promise<void> | undefined;
  private readonly catalog: FunctionCatalog;
  private closing: Promise<void> | undefined;
  /** The catalog's first read, started by start(); ready() waits for it, statements do not. */
  private catalogLoading: Promise<void> | undefined;
  /** The first full health round, once something asked for it (see settling()). */
  private fullRound: Promise<void> | undefined;
  /** A statement has finished: later reads start the replicas' probes (see settling()). */
  private answered = false;
  /** The first full round and the catalog's first read are done (see everyNodeProbed()). */
  private settled = false;

  constructor(config: ResolvedConfig) {
    super();
    this.config = config;
    this.nodes = [config.primary, ...config.replicas].map((nodeConfig) =>
      this.buildNode(nodeConfig),
    );
    this.probers = new Map(
      this.nodes.map((node) => [
        node,
        new NodeProber(
          node.name,
          nodeConnectionOptions(node.config),
          config.health.timeoutMs,
          config.applicationName,
        ),
      ]),
    );
    this.classifier = createClassifier({
      volatileFunctions: config.routing.volatileFunctions,
      allowFunctions: config.routing.allowFunctions,
    });
    this.policy = new StatementPolicy(config.routing);
    this.catalog = new FunctionCatalog(
      this.policy,
      primaryCatalogQuery(
        () => this.router.primary(),
        (node) => this.probers.get(node),
      ),
      {
        detect: config.routing.detectCatalogVolatile,
        refreshMs: config.routing.catalogRefreshMs,
        retryMs: CATALOG_RETRY_MS,
      },
    );
    this.router = new Router(this.nodes, createBalancer(config.loadBalancing), this.policy, {
      readWriteSplit: config.readWriteSplit,
      lagPolicy: config.replicaLag.policy,
      consistency: config.consistency.level,
      noPrimary: () => this.failoverManager.splitBrain,
      readChecks: readPipeline(
        (node, scope) => this.guard.check(node, scope),
        () => this.router.primary()?.health.lastProbe?.timeline,
      ),
    });
    this.monitor = new HealthMonitor(
      this.nodes,
      this.probers,
      config.health,
      config.replicaLag,
      () => this.router.primary(),
      {
        nodeDown: (node, error) =>
          this.emit('node-down', { node: node.name, role: node.role, error }),
        nodeUp: (node) => this.emit('node-up', { node: node.name, role: node.role }),
        lag: (node, over) =>
          this.emit('lag', {
            node: node.name,
            over,
            lagMs: roundMs(node.health.lagMs),
            lagBytes: node.health.lagBytes,
          }),
        round: () => this.failoverManager.onRound(),
      },
    );
    this.guard = new ConsistencyGuard(config.consistency, this.monitor, this.nodes);
    this.coordinator = createCoordinator(config.failover.coordinator);
    this.failoverManager = new FailoverManager(
      this.nodes,
      config.failover,
      this.monitor,
      {
        promote: promoteNode,
        identify: identifyNode,
        countInstances: () => countInstances(this.router.primary(), config.applicationName),
        applicationName: config.applicationName,
        coordinator: this.coordinator,
      },
      {
        started: (event) => this.emit('failover-started', event),
        candidate: (event) => this.emit('failover-candidate', event),
        completed: (event) => this.emit('failover-completed', event),
        failed: (error) => this.emit('failover-failed', { error }),
        splitBrain: (event) => this.emit('split-brain', event),
        severalInstances: (event) => {
          if (this.listenerCount('several-instances') > 0) this.emit('several-instances', event);
          else if (!this.warnedInstances) {
            this.warnedInstances = true;
            process.emitWarning(
              `pgpulse: ${event.instances} instances of "${event.applicationName}" probe the primary; ${event.advice}`,
              { code: 'PGPULSE_SEVERAL_INSTANCES' },
            );
          }
        },
      },
    );
    this.failover = this.failoverManager;
    this.monitoring = config.monitoring.enabled
      ? new Monitoring(this.nodes, config.monitoring, {
          alert: (alert) => this.emit('alert', alert),
          failoverInProgress: () => this.failoverManager.inProgress,
          meterProvider: config.telemetry.enabled
            ? (config.telemetry.meterProvider ?? registeredMeterProvider())
            : undefined,
        })
      : undefined;
    if (this.monitoring) {
      const monitoring = this.monitoring;
      this.on('failover-started', () => monitoring.failoverStarted());
    }
    const telemetry = config.telemetry.enabled
      ? new Telemetry(this.nodes, () => this.reasons.byReason, {
          ...(config.telemetry.tracerProvider
            ? { tracerProvider: config.telemetry.tracerProvider }
            : {}),
          ...(config.telemetry.meterProvider
            ? { meterProvider: config.telemetry.meterProvider }
            : {}),
          pgInstrumentation: config.telemetry.pgInstrumentation,
        })
      : undefined;
    this.telemetry = telemetry;
    this.results = config.cache.enabled
      ? new ResultCache(
          config.cache,
          (time) => this.monitor.primaryLsnSince(time),
          config.telemetry.enabled
            ? (config.telemetry.meterProvider ?? registeredMeterProvider())
            : undefined,
        )
      : undefined;
    const results = this.results;
    const channelName = config.cache.channel;
    const channel =
      results && channelName !== false
        ? new InvalidationChannel(channelName, config.cache.unsubscribedMaxAgeMs, {
            primary: () => this.router.primary(),
            connectionOptions: (node) => nodeConnectionOptions(node.config),
            connectTimeoutMs: config.health.timeoutMs,
            applicationName: config.applicationName,
            received: (tables, tags) => results.invalidate(tables, tags),
            resubscribed: () => results.invalidate([ALL_TABLES]),
          })
        : undefined;
    this.channel = channel;
    if (results && channel) {
      const bound = config.cache.unsubscribedMaxAgeMs;
      results.maxServedAgeMs = () => (channel.subscribed() ? undefined : bound);
      this.on('failover-completed', () => channel.poke());
    }
    this.cache = {
      enabled: results !== undefined,
      invalidate: ({ tables = [], tags = [] }) => {
        results?.invalidate(tables, tags);
        channel?.publish(tables, tags);
      },
      clear: () => results?.clear(),
      stats: () => results?.stats() ?? EMPTY_CACHE_STATS,
      subscribed: () => channel?.subscribed() ?? false,
      channelStats: () => ({
        subscriptions: channel?.subscriptions ?? 0,
        sent: channel?.sent ?? 0,
        heard: channel?.heard ?? 0,
      }),
    };
    this.slow = new SlowQueries(
      config.slowQuery,
      this.classifier,
      async (name) => {
        const node = this.nodes.find((n) => n.name === name);
        if (!node) throw new Error(`no node named ${name}`);
        // A connection the application leaves idle, else one of its own: the capture never
        // grows the pool nor waits long for it.
        return node.pool.acquireOwn(OWN_WORK_SPARE_WAIT_MS);
      },
      telemetry,
    );
    this.prepared = new PreparedStatements(config.preparedStatements);
    const executor = new Executor(
      this.router,
      this.classifier,
      // Each module's part, in this order: the consistency positions first, the catalog's
      // refusal handling before the cluster's 'replica-refused' event.
      new StatementObservers(
        [this.reasons, this.guard, this.slow, this.monitoring, this.catalog, this.ownListener],
        telemetry,
      ),
      () => {
        if (this.isReady) return undefined;
        // A statement before the start-up is done (#22, cold start): the primary pool's first
        // connection is opened beside the primary's probe, not after it, since a lazy start's
        // first read goes to the primary. It decides nothing: the statement still waits for
        // the probe, and a write for every node's (settling()). ready() alone opens none.
        this.router.primary()?.pool.openAhead();
        return this.start();
      },
      {
        writeWaitMs: config.failover.writeWaitMs,
        primaryElected: (ms) => this.failoverManager.waitForPrimary(ms),
        readWaitMs: config.consistency.waitMs,
        statementTimeoutMs: config.pool.statementTimeoutMs,
        nextProbeRound: (ms) => this.monitor.nextRound(ms),
        requestPositions: () => this.monitor.requestPositions(),
        hasWrites: (scope) => this.guard.hasWrites(scope),
        settling: (cls, scope) => this.settling(cls, scope),
      },
      results
        ? new CacheLayer(results, {
            keyPrefix: `${config.primary.database}\u0000${config.primary.user}`,
            forcesPrimary: (cls, text) => this.policy.forcesPrimary(cls, text),
            mayBeView: (relation) => this.policy.mayBeView(relation),
            required: (scope) => this.guard.requiredPosition(scope),
            positionOf: (node) => {
              const probe = node.health.lastProbe;
              return node.role === 'primary' ? probe?.currentLsn : probe?.replayLsn;
            },
            hit: telemetry ? (text) => telemetry.cacheHit(text) : undefined,
            published: channel ? (tables) => channel.publish(tables) : undefined,
          })
        : undefined,
      this.prepared,
    );
    this.pool = new RoutingPool(executor, config.pool.pooling, () => this.close());
  }

  /**
   * Loads the SQL parser, probes every node once, reads the catalog's volatile functions and
   * warms every pool to `pool.minSize`; call it to fail fast at start-up. It rejects with a
   * NodeConnectionError (naming the node and the cause) when the primary cannot be reached or
   * any node refuses the credentials, the database or the host name; a replica that is merely
   * down does not fail it (routing copes; a `node-down` event follows). After a rejection the
   * next call checks again. Statements wait for the start-up on their own without this check,
   * and a connection failure of theirs is a NodeConnectionError too.
   */
  async ready(): Promise<void> {
    if (this.closing) throw new ClusterClosedError();
    await this.start();
    await this.everyNodeProbed();
    if (this.isVerified) return;
    this.verifying ??= this.verifyNodes().finally(() => {
      this.verifying = undefined;
    });
    await this.verifying;
    this.isVerified = true;
  }

  /**
   * Judges the first probe of every node. A definitive failure (28P01, 28000, 3D000, a name
   * that does not resolve) fails on any node; on the primary a refused connection fails too,
   * and any other probe failure (a timeout, which a loaded machine can cause) is settled by a
   * real connect through its pool, bounded by the pool's own connect and acquire timeouts.
   */
  private async verifyNodes(): Promise<void> {
    const primary = this.router.primary() ?? this.nodes[0];
    const failures: NodeConnectionError[] = [];
    await Promise.all(
      this.nodes.map(async (node) => {
        const error = this.probers.get(node)?.lastFailure;
        if (error === undefined) return;
        const failure = connectFailureOf(error);
        if (isDefinitiveConnectFailure(failure)) {
          failures.push(new NodeConnectionError(node.config, error));
          return;
        }
        if (node !== primary) return;
        if (failure === 'refused') {
          failures.push(new NodeConnectionError(node.config, error));
          return;
        }
        try {
          const connection = await node.pool.acquire();
          connection.release();
        } catch (err) {
          failures.push(
            err instanceof NodeConnectionError ? err : new NodeConnectionError(node.config, err),
          );
        }
      }),
    );
    const first = failures.find((f) => f.node.role === 'primary') ?? failures[0];
    if (first) throw first;
  }

  /**
   * What statements wait for (#22: a cold start opens only what its first statement needs):
   * the parser, then a probe of the primary alone when it answers as a writable primary (else
   * a full round, as before), and the pools warmed to `pool.minSize`. The replicas are probed
   * by the first full round: the first periodic tick (unref'd), a read after the first answer,
   * a write or a context that wrote (which wait for it, see settling()), or ready(). Until a
   * replica's first probe answers, reads go to the primary. The catalog's volatile functions
   * are read in the background on the primary's probe connection; until then a read that
   * names a function or a relation is not trusted on a replica nor cached
   * (`StatementPolicy.catalogKnown`), and ready() waits for them.
   */
  private start(): Promise<void> {
    this.readiness ??= (async () => {
      // Not awaited: the coordinator matters at a promotion only, never for a statement.
      void this.coordinator?.prepare();
      // Together: the parser compiles while the primary's probe waits for the server. A first
      // probe on a connection is not a latency sample (ProbeResult.firstOnConnection), so the
      // compile's CPU time cannot bias the balancer.
      await Promise.all([this.monitor.startLazily(), loadParser()]);
      if (!this.closing) this.monitoring?.start();
      if (!this.closing) this.channel?.start();
      this.catalogLoading = this.catalog.firstLoad();
      await Promise.all(this.nodes.map((n) => n.pool.warm()));
      this.isReady = true;
    })();
    // A failed start-up (the parser did not load, a catalog read threw) is not kept: the
    // next statement or ready() starts again instead of failing forever.
    this.readiness.catch(() => {
      this.readiness = undefined;
    });
    return this.readiness;
  }

  /**
   * What start() did before the lazy start: the first full health round (every node probed)
   * and the catalog's first read; started at most once.
   */
  private everyNodeProbed(): Promise<void> {
    this.fullRound ??= Promise.all([this.monitor.firstRound(), this.catalogLoading]).then(() => {
      this.settled = true;
    });
    return this.fullRound;
  }

  /**
   * What a statement waits for before it is placed, while no full health round has completed
   * (a lazy cold start): a read of a context that has not written goes at once (to the
   * primary: no replica is probed yet), and after the first answer it starts the replicas'
   * probes without waiting for them. Anything else (a write, BEGIN, a session statement, a
   * read of a context that wrote or holds a token, a read that asked for a replica) waits for
   * the full round, so that the
   * split-brain and promotion checks of a round have seen every node before a write goes out
   * and a token's position is judged against every node, as before the lazy start.
   */
  private settling(
    cls: Classification,
    scope: Parameters<ConsistencyGuard['hasWrites']>[0],
  ): Promise<void> | undefined {
    if (this.settled) return undefined;
    // A read that asked for a replica (`cluster.replica()`, an eventual or lag-bounded scope,
    // a replica hint) waits for the round that can find one, as it did before.
    const wantsReplica =
      scope?.consistency === 'eventual' ||
      scope?.maxLagMs !== undefined ||
      cls.reason === 'hint-replica';
    if (cls.kind === 'read' && !wantsReplica && !this.guard.hasWrites(scope)) {
      if (this.answered) void this.everyNodeProbed();
      return undefined;
    }
    return this.everyNodeProbed();
  }

  /**
   * Runs `fn` with every cacheable read it makes served from the query result cache (`cache`
   * in the config; without it, `fn` just runs). Only provably read-only statements outside a
   * transaction are cached; a write through pgpulse drops the entries of the tables it
   * changed, and a context is never served an entry older than its own writes.
   */
  cached<T>(fn: () => T, options: CachedOptions = {}): InScope<T> {
    return runCached(options, fn) as InScope<T>;
  }

  /** Runs `fn` with every statement it makes, reads included, on the primary. */
  primary<T>(fn: () => T): InScope<T> {
    return runInScope({ target: 'primary' }, fn);
  }

  /** Runs `fn` with reads on replicas even right after its own writes (eventual consistency). */
  replica<T>(fn: () => T): InScope<T> {
    return runInScope({ target: 'auto', consistency: 'eventual' }, fn);
  }

  /** Runs `fn` with the given consistency level for its reads. */
  withConsistency<T>(level: ConsistencyLevel, fn: () => T): InScope<T> {
    return runInScope({ consistency: level }, fn);
  }

  /**
   * Runs `fn` as one context (e.g. one HTTP request): its reads see its own writes and never go
   * back in time, while other contexts keep reading from replicas. Statements outside any
   * context share one process-wide context.
   */
  context<T>(fn: () => T): InScope<T> {
    return runInScope({ session: this.guard.sessionFromToken('') }, fn);
  }

  /**
   * Connect/Express-style middleware (`app.use(cluster.middleware())`): every request runs as
   * its own context, so it reads its own writes while other requests keep using replicas. With
   * `header`, a token from `consistencyToken()` sent by the client (e.g. after a redirect) is
   * imported; a malformed one is ignored rather than failing the request.
   */
  middleware(options: { readonly header?: string } = {}): ContextMiddleware {
    const header = options.header?.toLowerCase();
    return (req, _res, next) => {
      const raw = header === undefined ? undefined : req.headers[header];
      this.requestContext(Array.isArray(raw) ? raw[0] : raw, () => next(), header);
    };
  }

  /**
   * Runs `fn` as a request's (or job's) own context: joined to the writes behind `token` when
   * it is a valid one from `consistencyToken()`, else fresh. A malformed token must not fail
   * the request: it reads as absent, and 'bad-token' is emitted with `header` (where it came from).
   */
  requestContext<T>(token: string | undefined, fn: () => T, header = ''): InScope<T> {
    let session: ConsistencySession | undefined;
    if (token) {
      try {
        session = this.guard.sessionFromToken(token);
      } catch (err) {
        if (!(err instanceof BadTokenError)) throw err;
        if (this.listenerCount('bad-token') > 0)
          this.emit('bad-token', { header, reason: err.message });
      }
    }
    return session ? runInScope({ session }, fn) : this.context(fn);
  }

  /** Runs `fn` reading only from replicas at most `maxLagMs` behind (else the lag policy applies). */
  withMaxLag<T>(maxLagMs: number, fn: () => T): InScope<T> {
    return runInScope({ maxLagMs }, fn);
  }

  /**
   * A token for the current context's writes, to carry across requests or jobs (a header, a
   * cookie, a job payload); '' when it wrote nothing. May query the primary once.
   */
  consistencyToken(): Promise<string> {
    return this.guard.token(currentScope(), () => this.primaryLsnNow());
  }

  /**
   * The primary's WAL position, or undefined when it cannot be had within a probe timeout: the
   * token then says "the primary's position at import" instead of failing during a crash.
   */
  private async primaryLsnNow(): Promise<Lsn | undefined> {
    const primary = this.router.primary();
    if (!primary?.health.up) return undefined;
    const ask = untraced(async () => {
      const rows = await primary.queryOnce<{ lsn: string }>(
        'SELECT pg_current_wal_insert_lsn()::text AS lsn',
      );
      return parseLsn(rows[0]?.lsn);
    });
    ask.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, this.config.health.timeoutMs, undefined);
    });
    try {
      return await Promise.race([ask, late]);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs `fn` as a context that has seen the writes behind `token` (from consistencyToken()). */
  withConsistencyToken<T>(token: string, fn: () => T): InScope<T> {
    return runInScope({ session: this.guard.sessionFromToken(token) }, fn);
  }

  /**
   * True when the current context wrote something some replica has not provably replayed yet.
   * Adapters use it where an ORM may merge this context's read with another's (Prisma batches
   * `findUnique` calls across requests), to keep such a read to itself.
   */
  hasUnreplicatedWrites(): boolean {
    return this.guard.hasUnreplicatedWrites(currentScope());
  }

  /**
   * A connection of its own on the primary (or on the node of that name), for work that needs
   * one session: maintenance DDL, advisory locks, `CREATE INDEX CONCURRENTLY`. Release it when
   * done; `release(true)` destroys it (after an error, or when its session state changed).
   */
  async acquire(target = 'primary'): Promise<PooledConnection> {
    await this.ready();
    const node =
      target === 'primary' ? this.router.writeNode() : this.nodes.find((n) => n.name === target);
    if (!node)
      throw new Error(
        `pgpulse: no node named "${target}"; nodes are ${this.nodes.map((n) => n.name).join(', ')}`,
      );
    return node.pool.acquire();
  }

  /** Where a statement would go now and why, without running it. Needs `ready()` first. */
  explainRoute(sql: string): RouteExplanation {
    if (!isParserLoaded()) throw new Error('pgpulse: await cluster.ready() before explainRoute()');
    const classification = this.classifier.classify(sql);
    const { target, reason } = this.router.decide(classification, sql, currentScope());
    return { classification, target, reason };
  }

  stats(): ClusterStats {
    return {
      nodes: this.nodes.map((n) => n.stats()),
      routing: Object.fromEntries(this.reasons.byReason),
      classifierCacheSize: this.classifier.cacheSize,
      probeRounds: this.monitor.rounds,
      positionChecks: this.monitor.positionChecks,
      alertRounds: this.monitoring?.rounds ?? 0,
      preparedStatements: this.prepared.stats(),
    };
  }

  /**
   * Statements slower than `slowQuery.thresholdMs`, by fingerprint (normalized text, calls,
   * total/mean/p95/max time, rows, redacted samples), most total time first, each with its
   * captured EXPLAIN plan and findings when there is one.
   */
  slowQueries(): SlowQueryReport {
    return this.slow.report();
  }

  /**
   * EXPLAIN a statement with findings and suggestions (indexes, statistics, safe rewrites).
   * A provably read-only statement is analysed with EXPLAIN ANALYZE inside BEGIN READ ONLY on a
   * replica when one is eligible; anything else gets a plain EXPLAIN on the primary and is never
   * executed.
   */
  async analyzeQuery(sql: string, params?: readonly unknown[]): Promise<QueryAnalysis> {
    await this.ready();
    const cls = this.classifier.classify(sql);
    const node =
      cls.kind === 'read'
        ? this.replica(() => this.router.readNode(currentScope()).node)
        : this.router.writeNode();
    const connection = await node.pool.acquire();
    try {
      const analysis = await analyzeQuery(connection.client, sql, params, {
        classifier: this.classifier,
      });
      connection.release();
      return analysis;
    } catch (err) {
      connection.release(true);
      throw err;
    }
  }

  /**
   * Alerts firing now (oldest first), each with its kind, node, value, threshold and `since`.
   * Empty without a `monitoring` section. `{ history: true }` gives the latest transitions
   * (fired and resolved) instead.
   */
  alerts(options: { readonly history?: boolean } = {}): readonly Alert[] {
    if (!this.monitoring) return [];
    return options.history ? this.monitoring.history() : this.monitoring.active();
  }

  /** Runs one monitoring round now (with `monitoring` configured); resolves when it is done. */
  async checkAlerts(): Promise<readonly Alert[]> {
    await this.ready();
    await this.monitoring?.round();
    return this.alerts();
  }

  /**
   * Closes the cluster; idempotent (a later call gets the first one's promise). New work is
   * refused at once with ClusterClosedError: pool.query(), pool.connect(), ready(), acquire(),
   * analyzeQuery(). Statements already issued and clients already checked out may finish for
   * up to `timeoutMs` (default {@link DEFAULT_CLOSE_TIMEOUT_MS}, 10 s); after that every
   * connection is cut (the server rolls back what was open) and a checked-out client's next
   * statement fails with ClusterClosedError. It resolves once every connection is closed,
   * which after the deadline does not wait for any borrower or any silent server.
   */
  close(options: CloseOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      throw new ConfigError([
        {
          field: 'close.timeoutMs',
          message: `must be a number of milliseconds >= 0 (got ${String(timeoutMs)})`,
        },
      ]);
    }
    this.closing ??= (async () => {
      const deadline = performance.now() + timeoutMs;
      this.pool.shutDown();
      this.catalog.stop();
      this.monitor.stop();
      this.monitoring?.stop();
      this.results?.clear();
      const quiet = await this.pool.quiet(timeoutMs);
      const ended = Promise.all([this.slow.close(), ...this.nodes.map((n) => n.pool.end())]);
      if (!quiet || !(await settlesWithin(ended, deadline - performance.now()))) {
        this.pool.expire();
        await Promise.all(this.nodes.map((n) => n.pool.terminate()));
      }
      await ended;
      // After the statements that may still finish: their writes are still told to the others.
      await this.channel?.close();
      await this.coordinator?.close().catch(() => {});
    })();
    return this.closing;
  }

  toJSON(): unknown {
    return { nodes: this.nodes.map((n) => n.toJSON()), loadBalancing: this.config.loadBalancing };
  }

  private buildNode(nodeConfig: ResolvedConfig['primary']): ClusterNode {
    const pool = new NodePool(nodeConfig, nodeConnectionOptions(nodeConfig), {
      ...this.config.pool,
      applicationName: this.config.applicationName,
    });
    // pg.Pool's events and set-up hooks, for every physical connection on every node.
    pool.setup = (client) => this.pool.connectionOpened(client);
    pool.onRemove = (client, reason) => this.pool.connectionRemoved(client, reason);
    pool.onError = (error, client) => {
      if (this.listenerCount('connection-error') > 0)
        this.emit('connection-error', { node: nodeConfig.name, error });
      if (client) this.pool.idleConnectionFailed(error, client);
    };
    const breaker = new CircuitBreaker({
      ...this.config.circuitBreaker,
      onStateChange: (from, to) => this.emit('breaker', { node: nodeConfig.name, from, to }),
    });
    return new ClusterNode(nodeConfig, pool, breaker);
  }

  /** The cluster's own part of the statement observers: readiness and its public event. */
  private readonly ownListener: StatementListener = {
    finished: () => {
      this.answered = true;
    },
    refused: (node, request) => {
      const { fingerprint, normalized } = fingerprintQuery(request.text, 500);
      this.emit('replica-refused', { node: node.name, query: normalized, fingerprint });
    },
  };
}

/**
 * How long a slow statement's EXPLAIN waits for a pooled connection to go idle (one with the
 * application's session set-up) before it opens one of its own.
 */
const OWN_WORK_SPARE_WAIT_MS = 100;

/** What `close()` waits for when not told: long enough for a request to finish, short of a pod's SIGKILL. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/** How `cluster.close()` ends the statements and clients still in use. */
export interface CloseOptions {
  /**
   * How long statements already issued and checked-out clients may go on before their
   * connections are cut; default {@link DEFAULT_CLOSE_TIMEOUT_MS}. 0 cuts them at once.
   */
  readonly timeoutMs?: number;
}

/** True when `work` settles within `ms`; the timer keeps the process up meanwhile. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  if (ms <= 0) return false;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function roundMs(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms);
}

/** Validates `config` (throwing a ConfigError that names each bad field) and builds a cluster. */
export function createCluster(config: PgPulseConfig): Cluster {
  return new Cluster(parseConfig(config));
}
