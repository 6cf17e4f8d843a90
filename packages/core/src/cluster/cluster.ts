import { EventEmitter } from 'node:events';
import { analyzeQuery, type QueryAnalysis, type SlowQueryReport } from '../analysis/index.js';
import { type CachedOptions, runCached } from '../cache/index.js';
import {
  type ConsistencyLevel,
  type PgPulseConfig,
  parseConfig,
  type ResolvedConfig,
} from '../config/index.js';
import {
  type ConsistencySession,
  currentScope,
  type InScope,
  runInScope,
} from '../context/index.js';
import { BadTokenError, ClusterClosedError } from '../errors/index.js';
import type { FailoverManager } from '../failover/index.js';
import { currentPrimaryLsn } from '../health/index.js';
import type { Alert } from '../monitoring/index.js';
import type { PooledConnection } from '../pool/index.js';
import type { RoutingPool } from '../routing/index.js';
import { isParserLoaded } from '../sql/index.js';
import type { ClusterNode } from '../topology/index.js';
import { closeParts, closeTimeoutMs } from './close.js';
import type {
  CloseOptions,
  ClusterCache,
  ClusterEvents,
  ClusterStats,
  ContextMiddleware,
  RouteExplanation,
} from './types.js';
import { type ClusterParts, wireCluster } from './wiring.js';

export { DEFAULT_CLOSE_TIMEOUT_MS } from './types.js';
/**
 * A primary and its replicas behind one pg.Pool-compatible `pool`. Create it with
 * `createCluster(config)`; hand `cluster.pool` to your ORM. The class is the public face: its
 * parts are built and connected in wiring.ts, the start-up is in ready.ts, close() in close.ts.
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
  private readonly parts: ClusterParts;
  private closing: Promise<void> | undefined;

  constructor(config: ResolvedConfig) {
    super();
    this.config = config;
    this.parts = wireCluster(
      config,
      this,
      () => this.closing !== undefined,
      () => this.close(),
    );
    this.nodes = this.parts.nodes;
    this.pool = this.parts.pool;
    this.failover = this.parts.failover;
    this.cache = this.parts.cache;
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
    await this.parts.readiness.ready();
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
    return runInScope({ session: this.parts.guard.sessionFromToken('') }, fn);
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
        session = this.parts.guard.sessionFromToken(token);
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
    return this.parts.guard.token(currentScope(), () =>
      currentPrimaryLsn(this.parts.router.primary(), this.config.health.timeoutMs),
    );
  }

  /** Runs `fn` as a context that has seen the writes behind `token` (from consistencyToken()). */
  withConsistencyToken<T>(token: string, fn: () => T): InScope<T> {
    return runInScope({ session: this.parts.guard.sessionFromToken(token) }, fn);
  }

  /**
   * True when the current context wrote something some replica has not provably replayed yet.
   * Adapters use it where an ORM may merge this context's read with another's (Prisma batches
   * `findUnique` calls across requests), to keep such a read to itself.
   */
  hasUnreplicatedWrites(): boolean {
    return this.parts.guard.hasUnreplicatedWrites(currentScope());
  }

  /**
   * A connection of its own on the primary (or on the node of that name), for work that needs
   * one session: maintenance DDL, advisory locks, `CREATE INDEX CONCURRENTLY`. Release it when
   * done; `release(true)` destroys it (after an error, or when its session state changed).
   */
  async acquire(target = 'primary'): Promise<PooledConnection> {
    await this.ready();
    const node =
      target === 'primary'
        ? this.parts.router.writeNode()
        : this.nodes.find((n) => n.name === target);
    if (!node)
      throw new Error(
        `pgpulse: no node named "${target}"; nodes are ${this.nodes.map((n) => n.name).join(', ')}`,
      );
    return node.pool.acquire();
  }

  /** Where a statement would go now and why, without running it. Needs `ready()` first. */
  explainRoute(sql: string): RouteExplanation {
    if (!isParserLoaded()) throw new Error('pgpulse: await cluster.ready() before explainRoute()');
    const classification = this.parts.classifier.classify(sql);
    const { target, reason } = this.parts.router.decide(classification, sql, currentScope());
    return { classification, target, reason };
  }

  stats(): ClusterStats {
    return {
      nodes: this.nodes.map((n) => n.stats()),
      routing: Object.fromEntries(this.parts.reasons.byReason),
      classifierCacheSize: this.parts.classifier.cacheSize,
      probeRounds: this.parts.monitor.rounds,
      positionChecks: this.parts.monitor.positionChecks,
      alertRounds: this.parts.monitoring?.rounds ?? 0,
      preparedStatements: this.parts.prepared.stats(),
    };
  }

  /**
   * Statements slower than `slowQuery.thresholdMs`, by fingerprint (normalized text, calls,
   * total/mean/p95/max time, rows, redacted samples), most total time first, each with its
   * captured EXPLAIN plan and findings when there is one.
   */
  slowQueries(): SlowQueryReport {
    return this.parts.slow.report();
  }

  /**
   * EXPLAIN a statement with findings and suggestions (indexes, statistics, safe rewrites).
   * A provably read-only statement is analysed with EXPLAIN ANALYZE inside BEGIN READ ONLY on a
   * replica when one is eligible; anything else gets a plain EXPLAIN on the primary and is never
   * executed.
   */
  async analyzeQuery(sql: string, params?: readonly unknown[]): Promise<QueryAnalysis> {
    await this.ready();
    const cls = this.parts.classifier.classify(sql);
    const node =
      cls.kind === 'read'
        ? this.replica(() => this.parts.router.readNode(currentScope()).node)
        : this.parts.router.writeNode();
    const connection = await node.pool.acquire();
    try {
      const analysis = await analyzeQuery(connection.client, sql, params, {
        classifier: this.parts.classifier,
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
    if (!this.parts.monitoring) return [];
    return options.history ? this.parts.monitoring.history() : this.parts.monitoring.active();
  }

  /** Runs one monitoring round now (with `monitoring` configured); resolves when it is done. */
  async checkAlerts(): Promise<readonly Alert[]> {
    await this.ready();
    await this.parts.monitoring?.round();
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
    const timeoutMs = closeTimeoutMs(options.timeoutMs);
    this.closing ??= closeParts(this.parts, timeoutMs);
    return this.closing;
  }

  toJSON(): unknown {
    return { nodes: this.nodes.map((n) => n.toJSON()), loadBalancing: this.config.loadBalancing };
  }
}

/** Validates `config` (throwing a ConfigError that names each bad field) and builds a cluster. */
export function createCluster(config: PgPulseConfig): Cluster {
  return new Cluster(parseConfig(config));
}
