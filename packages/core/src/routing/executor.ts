import type pg from 'pg';
import type { RouteScope } from '../context/index.js';
import { PrimaryUnavailableError } from '../errors/index.js';
import { isAvailabilityError } from '../health/index.js';
import type { PooledConnection } from '../pool/index.js';
import { type ClusterNode, transactionStatus } from '../topology/index.js';
import type { Classification, Classifier } from './classifier.js';
import type { QueryRequest } from './query-args.js';
import type { Router, RoutingReason } from './router.js';

/** Hooks the cluster attaches to every statement (counting, telemetry, read-your-writes). */
export interface StatementObserver {
  routed(reason: RoutingReason): void;
}

/** A statement's node and connection while it runs. */
export interface Placement {
  readonly node: ClusterNode;
  readonly reason: RoutingReason;
}

/**
 * Runs statements that are not pinned to a connection: classify, route, acquire, execute,
 * release, and retry a read once on another node when the first failed for availability
 * before any row came back.
 */
export class Executor {
  constructor(
    readonly router: Router,
    readonly classifier: Classifier,
    private readonly observer: StatementObserver,
    private readonly ensureReady: () => Promise<void> | undefined,
  ) {}

  /** Resolves once the parser (and, when configured, the catalog's volatile functions) is loaded. */
  async ready(): Promise<void> {
    const waiting = this.ensureReady();
    if (waiting) await waiting;
  }

  classify(text: string): Classification {
    return this.classifier.classify(text);
  }

  /** The node a statement should start on, when it is not already pinned. */
  place(
    cls: Classification,
    text: string,
    scope: RouteScope | undefined,
    exclude?: ClusterNode,
  ): Placement {
    const decision = this.router.decide(cls, text, scope);
    if (decision.target === 'primary')
      return { node: this.router.writeNode(), reason: decision.reason };
    return this.router.readNode(scope, exclude);
  }

  async run(request: QueryRequest, scope: RouteScope | undefined): Promise<pg.QueryResult> {
    const waiting = this.ensureReady();
    if (waiting) await waiting;
    const cls = this.classifier.classify(request.text);
    const first = this.place(cls, request.text, scope);
    try {
      return await this.runOnce(first, cls, request);
    } catch (err) {
      if (!this.retriable(first, cls, err)) throw err;
      let second: Placement;
      try {
        second = this.place(cls, request.text, scope, first.node);
      } catch {
        throw err; // nowhere else to go: the first failure is the one that explains it
      }
      if (second.node === first.node) throw err;
      return this.runOnce({ node: second.node, reason: 'retry' }, cls, request);
    }
  }

  /**
   * Acquires a connection on the node, counting failures toward its breaker. A write whose
   * connection could not even be opened was certainly not sent, which the error says.
   */
  async acquire(placement: Placement, cls: Classification): Promise<PooledConnection> {
    try {
      return await placement.node.pool.acquire();
    } catch (err) {
      this.recordOutcome(placement.node, err);
      if (cls.kind === 'write' && placement.node.role === 'primary' && isAvailabilityError(err)) {
        throw new PrimaryUnavailableError(
          `could not connect to primary "${placement.node.name}" (${placement.node.host}:${placement.node.port})`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Runs one statement on an acquired connection, keeping the node's figures. */
  async execute(
    node: ClusterNode,
    connection: PooledConnection,
    config: QueryRequest['config'],
    cls: Classification,
  ): Promise<pg.QueryResult> {
    node.inFlight++;
    node.counters.queries++;
    if (cls.kind === 'read') node.counters.reads++;
    else node.counters.writes++;
    const started = performance.now();
    try {
      const result = await connection.client.query(config);
      node.recordLatency(performance.now() - started);
      node.breaker.recordSuccess();
      return result;
    } catch (err) {
      this.recordOutcome(node, err);
      throw err;
    } finally {
      node.inFlight--;
    }
  }

  recordOutcome(node: ClusterNode, err: unknown): void {
    node.counters.errors++;
    if (isAvailabilityError(err)) {
      node.counters.availabilityErrors++;
      node.breaker.recordFailure();
    } else {
      // The server answered, so the node is up even though the statement failed.
      node.breaker.recordSuccess();
    }
  }

  private async runOnce(
    placement: Placement,
    cls: Classification,
    request: QueryRequest,
  ): Promise<pg.QueryResult> {
    this.observer.routed(placement.reason);
    const connection = await this.acquire(placement, cls);
    let broken: unknown;
    try {
      return await this.execute(placement.node, connection, request.config, cls);
    } catch (err) {
      if (isAvailabilityError(err)) broken = err;
      throw err;
    } finally {
      // A one-off statement must not hand a connection back inside a transaction or with
      // changed session state: the next borrower would inherit it.
      const dirty =
        broken !== undefined ||
        cls.session !== undefined ||
        transactionStatus(connection.client) !== 'I';
      connection.release(dirty);
    }
  }

  private retriable(first: Placement, cls: Classification, err: unknown): boolean {
    return cls.kind === 'read' && first.reason !== 'retry' && isAvailabilityError(err);
  }
}
