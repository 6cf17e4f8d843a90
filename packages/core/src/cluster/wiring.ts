import type { EventEmitter } from 'node:events';
import { fingerprintQuery, SlowQueries } from '../analysis/index.js';
import { createBalancer } from '../balancing/index.js';
import type { InvalidationChannel, ResultCache } from '../cache/index.js';
import type { ResolvedConfig } from '../config/index.js';
import { ConsistencyGuard } from '../consistency/index.js';
import {
  countInstances,
  createCoordinator,
  type FailoverCoordinator,
  FailoverManager,
  identifyNode,
  promoteNode,
  type SeveralInstancesEvent,
} from '../failover/index.js';
import { HealthMonitor, type NodeProber } from '../health/index.js';
import { Monitoring } from '../monitoring/index.js';
import { PreparedStatements } from '../prepared/index.js';
import {
  type Classifier,
  createClassifier,
  Executor,
  FunctionCatalog,
  primaryCatalogQuery,
  Router,
  RoutingCounts,
  RoutingPool,
  readPipeline,
  type StatementListener,
  StatementObservers,
  StatementPolicy,
} from '../routing/index.js';
import { registeredMeterProvider, Telemetry } from '../telemetry/index.js';
import type { ClusterNode } from '../topology/index.js';
import { wireCache } from './cache-wiring.js';
import { buildNodes, buildProbers } from './nodes.js';
import { Readiness } from './ready.js';
import type { ClusterCache, ClusterEvents } from './types.js';

/** How often to retry reading the catalog's volatile functions after a failure. */
const CATALOG_RETRY_MS = 5_000;

/**
 * How long a slow statement's EXPLAIN waits for a pooled connection to go idle (one with the
 * application's session set-up) before it opens one of its own.
 */
const OWN_WORK_SPARE_WAIT_MS = 100;

/** Where the parts report: the cluster's public events (the one public hook style). */
export type ClusterEmitter = Pick<EventEmitter<ClusterEvents>, 'emit' | 'listenerCount'>;

/** Every part of a cluster, built and connected once by {@link wireCluster}. */
export interface ClusterParts {
  readonly nodes: readonly ClusterNode[];
  readonly probers: ReadonlyMap<ClusterNode, NodeProber>;
  readonly classifier: Classifier;
  readonly policy: StatementPolicy;
  readonly catalog: FunctionCatalog;
  readonly router: Router;
  readonly monitor: HealthMonitor<ClusterNode>;
  readonly guard: ConsistencyGuard;
  readonly coordinator: FailoverCoordinator | undefined;
  readonly failover: FailoverManager;
  readonly monitoring: Monitoring | undefined;
  readonly telemetry: Telemetry | undefined;
  readonly results: ResultCache | undefined;
  readonly channel: InvalidationChannel | undefined;
  readonly cache: ClusterCache;
  readonly slow: SlowQueries;
  readonly prepared: PreparedStatements;
  readonly reasons: RoutingCounts;
  readonly readiness: Readiness;
  readonly pool: RoutingPool;
}

/**
 * The composition root: builds the nodes, health, failover, routing, consistency, cache,
 * telemetry and monitoring parts, connects them (each part gets the listener object or the
 * functions it asks for in its constructor) and routes their events to `events`.
 * `closing` says whether close() was called; `close` is what `pool.end()` runs.
 */
export function wireCluster(
  config: ResolvedConfig,
  events: ClusterEmitter,
  closing: () => boolean,
  close: () => Promise<void>,
): ClusterParts {
  // The pool is built last; the nodes' connection events reach it through this reference.
  let pool: RoutingPool | undefined;
  const nodes = buildNodes(config, {
    connectionOpened: (client) => pool?.connectionOpened(client),
    connectionRemoved: (client, reason) => pool?.connectionRemoved(client, reason),
    connectionError: (node, error, client) => {
      if (events.listenerCount('connection-error') > 0)
        events.emit('connection-error', { node, error });
      if (client) pool?.idleConnectionFailed(error, client);
    },
    breakerChanged: (node, from, to) => events.emit('breaker', { node, from, to }),
  });
  const probers = buildProbers(nodes, config);
  const classifier = createClassifier({
    volatileFunctions: config.routing.volatileFunctions,
    allowFunctions: config.routing.allowFunctions,
  });
  const policy = new StatementPolicy(config.routing);
  // Parts that need each other late (a read check needs the guard, the monitor the failover
  // manager) reach them through these, set below before any statement or probe runs.
  let guard: ConsistencyGuard | undefined;
  let failover: FailoverManager | undefined;
  let monitoring: Monitoring | undefined;
  let channel: InvalidationChannel | undefined;
  const catalog = new FunctionCatalog(
    policy,
    primaryCatalogQuery(
      () => router.primary(),
      (node) => probers.get(node),
    ),
    {
      detect: config.routing.detectCatalogVolatile,
      refreshMs: config.routing.catalogRefreshMs,
      retryMs: CATALOG_RETRY_MS,
    },
  );
  const router: Router = new Router(nodes, createBalancer(config.loadBalancing), policy, {
    readWriteSplit: config.readWriteSplit,
    lagPolicy: config.replicaLag.policy,
    consistency: config.consistency.level,
    noPrimary: () => failover?.splitBrain,
    readChecks: readPipeline(
      (node, scope) => guard?.check(node, scope),
      () => router.primary()?.health.lastProbe?.timeline,
    ),
  });
  const monitor = new HealthMonitor(
    nodes,
    probers,
    config.health,
    config.replicaLag,
    () => router.primary(),
    {
      nodeDown: (node, error) =>
        events.emit('node-down', { node: node.name, role: node.role, error }),
      nodeUp: (node) => events.emit('node-up', { node: node.name, role: node.role }),
      lag: (node, over) =>
        events.emit('lag', {
          node: node.name,
          over,
          lagMs: roundMs(node.health.lagMs),
          lagBytes: node.health.lagBytes,
        }),
      round: () => failover?.onRound(),
    },
  );
  guard = new ConsistencyGuard(config.consistency, monitor, nodes);
  const coordinator = createCoordinator(config.failover.coordinator);
  const warnSeveral = severalInstancesWarning(events);
  failover = new FailoverManager(
    nodes,
    config.failover,
    monitor,
    {
      promote: promoteNode,
      identify: identifyNode,
      countInstances: () => countInstances(router.primary(), config.applicationName),
      applicationName: config.applicationName,
      coordinator,
    },
    {
      started: (event) => {
        monitoring?.failoverStarted();
        events.emit('failover-started', event);
      },
      candidate: (event) => events.emit('failover-candidate', event),
      completed: (event) => {
        channel?.poke();
        events.emit('failover-completed', event);
      },
      failed: (error) => events.emit('failover-failed', { error }),
      splitBrain: (event) => events.emit('split-brain', event),
      severalInstances: warnSeveral,
    },
  );
  const manager = failover;
  const meterProvider = config.telemetry.enabled
    ? (config.telemetry.meterProvider ?? registeredMeterProvider())
    : undefined;
  monitoring = config.monitoring.enabled
    ? new Monitoring(nodes, config.monitoring, {
        alert: (alert) => events.emit('alert', alert),
        failoverInProgress: () => manager.inProgress,
        meterProvider,
      })
    : undefined;
  const reasons = new RoutingCounts();
  const telemetry = config.telemetry.enabled
    ? new Telemetry(nodes, () => reasons.byReason, {
        ...(config.telemetry.tracerProvider
          ? { tracerProvider: config.telemetry.tracerProvider }
          : {}),
        ...(config.telemetry.meterProvider
          ? { meterProvider: config.telemetry.meterProvider }
          : {}),
        pgInstrumentation: config.telemetry.pgInstrumentation,
      })
    : undefined;
  const cache = wireCache(config, { router, monitor, guard, policy, telemetry });
  channel = cache.channel;
  const slow = new SlowQueries(
    config.slowQuery,
    classifier,
    async (name) => {
      const node = nodes.find((n) => n.name === name);
      if (!node) throw new Error(`no node named ${name}`);
      // A connection the application leaves idle, else one of its own: the capture never
      // grows the pool nor waits long for it.
      return node.pool.acquireOwn(OWN_WORK_SPARE_WAIT_MS);
    },
    telemetry,
  );
  const prepared = new PreparedStatements(config.preparedStatements);
  const readiness = new Readiness({
    nodes,
    probers,
    router,
    monitor,
    guard,
    catalog,
    monitoring,
    channel,
    coordinator,
    closing,
  });
  const executor = new Executor(
    router,
    classifier,
    // Each module's part, in this order: the consistency positions first, the catalog's
    // refusal handling before the cluster's 'replica-refused' event.
    new StatementObservers(
      // The slow-query log marks a slow statement before telemetry records its span.
      [reasons, guard, slow, telemetry, monitoring, catalog, readiness, refusalEvents(events)],
      telemetry,
    ),
    () => {
      if (readiness.started) return undefined;
      // A statement before the start-up is done (#22, cold start): the primary pool's first
      // connection is opened beside the primary's probe, not after it, since a lazy start's
      // first read goes to the primary. It decides nothing: the statement still waits for
      // the probe, and a write for every node's (settling()). ready() alone opens none.
      router.primary()?.pool.openAhead();
      return readiness.start();
    },
    {
      writeWaitMs: config.failover.writeWaitMs,
      primaryElected: (ms) => manager.waitForPrimary(ms),
      readWaitMs: config.consistency.waitMs,
      statementTimeoutMs: config.pool.statementTimeoutMs,
      nextProbeRound: (ms) => monitor.nextRound(ms),
      requestPositions: () => monitor.requestPositions(),
      hasWrites: (scope) => guard.hasWrites(scope),
      settling: (cls, scope) => readiness.settling(cls, scope),
    },
    cache.layer,
    prepared,
  );
  pool = new RoutingPool(executor, config.pool.pooling, close);
  return {
    nodes,
    probers,
    classifier,
    policy,
    catalog,
    router,
    monitor,
    guard,
    coordinator,
    failover: manager,
    monitoring,
    telemetry,
    results: cache.results,
    channel,
    cache: cache.face,
    slow,
    prepared,
    reasons,
    readiness,
    pool,
  };
}

/** The cluster's 'replica-refused' event, as a statement listener (after the catalog's part). */
function refusalEvents(events: ClusterEmitter): StatementListener {
  return {
    refused: (node, request) => {
      const { fingerprint, normalized } = fingerprintQuery(request.text, 500);
      events.emit('replica-refused', { node: node.name, query: normalized, fingerprint });
    },
  };
}

/**
 * 'several-instances' to its listeners; without one, a process warning, once: automatic
 * promotion without a coordinator is unsafe with several instances, and must not go unseen.
 */
function severalInstancesWarning(events: ClusterEmitter): (event: SeveralInstancesEvent) => void {
  let warned = false;
  return (event) => {
    if (events.listenerCount('several-instances') > 0) events.emit('several-instances', event);
    else if (!warned) {
      warned = true;
      process.emitWarning(
        `pgpulse: ${event.instances} instances of "${event.applicationName}" probe the primary; ${event.advice}`,
        { code: 'PGPULSE_SEVERAL_INSTANCES' },
      );
    }
  };
}

function roundMs(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.round(ms);
}
