import type pg from 'pg';
import { currentScope, type RouteScope } from '../context/index.js';
import { PrimaryUnavailableError, TransactionOnPoolError } from '../errors/index.js';
import { isAvailabilityError } from '../health/index.js';
import { type PooledConnection, transactionStatus } from '../pool/index.js';
import type { ClusterNode } from '../topology/index.js';
import { acquire, recordOutcome } from './acquire.js';
import type { Classification, Classifier } from './classification.js';
import type {
  Adopter,
  LeaseListener,
  PreparedStatementHook,
  ReadCacheHook,
} from './executor-hooks.js';
import { type Placement, type PlacementWaits, Placer } from './placement.js';
import { refuseOnPool, refuseSessionBehindPooler } from './pool-statements.js';
import type { QueryRequest } from './query-args.js';
import { asRefusedWrite, isStandbyRefusal } from './refusals.js';
import { send, withStatementDeadline } from './round-trip.js';
import type { Router } from './router.js';
import type { StatementEvent, StatementObserver } from './statement-observer.js';

/**
 * Runs statements that are not pinned to a connection: classify, route, acquire, execute,
 * release, and retry a read once on another node when the first failed for availability
 * before any row came back.
 */
export class Executor {
  private readonly placer: Placer;

  constructor(
    readonly router: Router,
    readonly classifier: Classifier,
    private readonly observer: StatementObserver,
    private readonly ensureReady: () => Promise<void> | undefined,
    private readonly waits: PlacementWaits,
    private readonly cache?: ReadCacheHook,
    private readonly prepared?: PreparedStatementHook,
  ) {
    this.placer = new Placer(router, waits);
  }

  /** Resolves once the parser (and, when configured, the catalog's volatile functions) is loaded. */
  async ready(): Promise<void> {
    const waiting = this.ensureReady();
    if (waiting) await waiting;
  }

  /** The wait still ahead before statements can run, or undefined once ready. */
  pendingReady(): Promise<void> | undefined {
    return this.ensureReady();
  }

  classify(text: string): Classification {
    return this.classifier.classify(text);
  }

  /** {@link Placer.placeWithWaits}: the placement itself when nothing has to wait. */
  placeWithWaits(
    cls: Classification,
    text: string,
    scope: RouteScope | undefined,
    started = performance.now(),
  ): Placement | Promise<Placement> {
    return this.placer.placeWithWaits(cls, text, scope, started);
  }

  /**
   * `pool.query()`: run(), except that a statement which opens, continues or ends a
   * transaction, or changes a session setting, is refused before it is sent (each pool
   * statement may get another connection). A text that is a whole transaction
   * (`BEGIN; ...; COMMIT`), or a SET followed by what it is for, runs as usual.
   */
  runOnPool(
    request: QueryRequest,
    scope: RouteScope | undefined,
    leases?: LeaseListener,
  ): Promise<pg.QueryResult> {
    const waiting = this.ensureReady();
    if (waiting) return waiting.then(() => this.runOnPoolReady(request, scope, leases));
    return this.runOnPoolReady(request, scope, leases);
  }

  // The statement path keeps one async frame (runRouted) and one for the statement itself
  // (execute): every async function between them cost a promise and a microtask turn per
  // statement. These return the promise they are given, and a throw as a rejection.
  private runOnPoolReady(
    request: QueryRequest,
    scope: RouteScope | undefined,
    leases: LeaseListener | undefined,
  ): Promise<pg.QueryResult> {
    try {
      return this.run(request, scope, this.poolStatement(request), leases);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The classification of a pool statement, or a throw when a pool cannot run it. */
  private poolStatement(request: QueryRequest): Classification {
    const cls = this.classifier.classify(request.text);
    refuseOnPool(cls, this.router.nodes);
    return cls;
  }

  /** {@link refuseSessionBehindPooler} over this cluster's nodes. */
  refuseSessionBehindPooler(cls: Classification): void {
    refuseSessionBehindPooler(cls, this.router.nodes);
  }

  /**
   * `cls` when the caller already classified the text (a pg client's statement). `adopt`: a
   * pg client's statement whose connection came back with session state the server reported
   * (a function ran set_config or SET ROLE) offers it to the client, which keeps it pinned
   * rather than lose that state on its next statement.
   */
  run(
    request: QueryRequest,
    scope: RouteScope | undefined,
    classified?: Classification,
    leases?: LeaseListener,
    adopt?: Adopter,
  ): Promise<pg.QueryResult> {
    const waiting = this.ensureReady();
    if (waiting)
      return waiting.then(() => this.runReady(request, scope, classified, leases, adopt));
    return this.runReady(request, scope, classified, leases, adopt);
  }

  private runReady(
    request: QueryRequest,
    scope: RouteScope | undefined,
    classified: Classification | undefined,
    leases: LeaseListener | undefined,
    adopt: Adopter | undefined,
  ): Promise<pg.QueryResult> {
    try {
      const cls = classified ?? this.classifier.classify(request.text);
      if (this.cache) {
        // Only here, outside any transaction or pin: pinned statements never reach run().
        const cached = this.cache.read(request, cls, scope, (req, placed) =>
          this.runRouted(req, scope, cls, leases, adopt, placed),
        );
        if (cached) return cached;
      }
      return this.runRouted(request, scope, cls, leases, adopt);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private async runRouted(
    request: QueryRequest,
    scope: RouteScope | undefined,
    cls: Classification,
    leases: LeaseListener | undefined,
    adopt: Adopter | undefined,
    placed?: (node: ClusterNode) => void,
  ): Promise<pg.QueryResult> {
    const started = performance.now();
    const placing = this.placeWithWaits(cls, request.text, scope, started);
    let first = placing instanceof Promise ? await placing : placing;
    for (;;) {
      placed?.(first.node);
      let failure: unknown;
      try {
        return await this.runOnce(first, cls, request, leases, adopt);
      } catch (err) {
        failure = err;
      }
      try {
        return await this.afterFailure(first, failure, cls, request, scope, leases, placed);
      } catch (err) {
        // The primary died and the probes have not noticed yet: the connection failed, so
        // nothing was sent. Within failover.writeWaitMs, wait a probe round and place again.
        const left = this.waits.writeWaitMs - (performance.now() - started);
        if (!(err instanceof PrimaryUnavailableError) || first.node.role !== 'primary' || left <= 0)
          throw err;
        await this.waits.nextProbeRound(left);
        first = await this.placeWithWaits(cls, request.text, scope, started);
      }
    }
  }

  /**
   * What follows a failed statement on its first placement: the standby-refusal retry on the
   * primary and the one read retry elsewhere; anything else is thrown as it came.
   */
  private async afterFailure(
    first: Placement,
    err: unknown,
    cls: Classification,
    request: QueryRequest,
    scope: RouteScope | undefined,
    leases: LeaseListener | undefined,
    placed?: (node: ClusterNode) => void,
  ): Promise<pg.QueryResult> {
    if (cls.kind === 'read' && first.node.role === 'replica' && isStandbyRefusal(err)) {
      // Nothing ran (a standby writes nothing) and no transaction is open (pinned
      // statements never come here): run it once on the primary, as the write it is.
      this.observer.refused?.(first.node, request, err);
      const primary = { node: this.router.writeNode(), reason: 'replica-refused' as const };
      placed?.(primary.node);
      return this.runOnce(primary, asRefusedWrite(cls), request, leases);
    }
    if (!this.retriable(first, cls, err)) throw err;
    let second: Placement;
    try {
      second = this.placer.place(cls, request.text, scope, first.node);
    } catch {
      throw err; // nowhere else to go: the first failure is the one that explains it
    }
    if (second.node === first.node) throw err;
    placed?.(second.node);
    return this.runOnce({ node: second.node, reason: 'retry' }, cls, request, leases);
  }

  /**
   * Runs one statement on an acquired connection, keeping the node's figures. `lease`: the
   * connection was acquired for this statement alone and goes back (or to `adopt`) after it.
   */
  async execute(
    placement: Placement,
    connection: PooledConnection,
    request: QueryRequest,
    cls: Classification,
    lease?: OneOffLease,
  ): Promise<pg.QueryResult> {
    const node = placement.node;
    const pinnedCache = placement.reason === 'pinned' ? this.cache?.pinned(request) : undefined;
    const event: StatementEvent = {
      node,
      reason: placement.reason,
      cls,
      request: pinnedCache ? { ...request, cache: pinnedCache } : request,
      scope: currentScope(),
    };
    // A one-off read may be cut (and retried elsewhere) when its node stops answering probes.
    const oneOff = cls.kind === 'read' && placement.reason !== 'pinned';
    if (oneOff) node.readStarted(connection.client);
    node.counters.queries++;
    if (cls.kind === 'read') node.counters.reads++;
    else node.counters.writes++;
    const started = performance.now();
    let finished: number | undefined;
    let error: unknown;
    let failed = false;
    let result: pg.QueryResult | undefined;
    try {
      const client = connection.client;
      const prepared = this.prepared;
      const timeoutMs = this.waits.statementTimeoutMs ?? 0;
      // Without a wrapper (telemetry) or a deadline, sent directly: no closures per statement.
      result = await (this.observer.wraps || timeoutMs > 0
        ? this.observer.around(event, () =>
            withStatementDeadline(node, connection, timeoutMs, () =>
              send(client, request, cls, node, event, prepared),
            ),
          )
        : send(client, request, cls, node, event, prepared));
      if (cls.session !== undefined) prepared?.executed(client, cls, request.text);
      finished = performance.now();
      node.recordLatency(finished - started);
      node.breaker.recordSuccess();
    } catch (err) {
      error = err;
      failed = true;
      recordOutcome(node, err);
    } finally {
      if (oneOff) node.readFinished(connection.client);
      this.cache?.executed(cls, request, connection.client);
      this.observer.finished(event, {
        durationMs: (finished ?? performance.now()) - started,
        error,
        rowCount: result?.rowCount,
      });
    }
    if (lease !== undefined)
      return this.giveBack(placement, connection, cls, lease, result, failed, error);
    if (failed) throw error;
    return result as pg.QueryResult;
  }

  /** Acquires a connection on the placement's node and runs the statement on it alone. */
  private runOnce(
    placement: Placement,
    cls: Classification,
    request: QueryRequest,
    leases: LeaseListener | undefined,
    adopt?: Adopter,
  ): Promise<pg.QueryResult> {
    this.observer.routed(placement.reason, placement.node);
    leases?.acquiring?.();
    const acquiring = acquire(placement, cls);
    const lease: OneOffLease = { leases, adopt };
    if (acquiring instanceof Promise) {
      return acquiring.then((connection) => {
        leases?.acquired(connection.client);
        return this.execute(placement, connection, request, cls, lease);
      });
    }
    leases?.acquired(acquiring.client);
    return this.execute(placement, acquiring, request, cls, lease);
  }

  /**
   * A one-off statement's connection after it ran: offered to `adopt` when the server
   * reported changed session state, else released (discarded when it cannot be reused).
   * Returns the result, or throws the statement's error.
   */
  private giveBack(
    placement: Placement,
    connection: PooledConnection,
    cls: Classification,
    { leases, adopt }: OneOffLease,
    result: pg.QueryResult | undefined,
    failed: boolean,
    failure: unknown,
  ): pg.QueryResult {
    const leftOpen = transactionStatus(connection.client) !== 'I';
    if (
      !failed &&
      !leftOpen &&
      adopt !== undefined &&
      connection.reportedSettingsChanged?.() === true &&
      adopt(placement.node, connection)
    ) {
      return result as pg.QueryResult;
    }
    leases?.released(
      connection.client,
      failed ? (failure instanceof Error ? failure : new Error(String(failure))) : undefined,
    );
    // A one-off statement must not hand a connection back inside a transaction or with
    // changed session state: the next borrower would inherit it. Sequence state (currval)
    // only answers the same session's later calls, which a one-off statement has none of.
    connection.release(
      (failed && isAvailabilityError(failure)) ||
        (cls.session !== undefined && cls.session !== 'sequence') ||
        leftOpen,
    );
    if (failed) throw failure;
    // Closing that connection rolled back what the statement left open: say so, never
    // acknowledge work that was undone.
    if (leftOpen) throw new TransactionOnPoolError('A statement that left a transaction open');
    return result as pg.QueryResult;
  }

  private retriable(first: Placement, cls: Classification, err: unknown): boolean {
    return cls.kind === 'read' && first.reason !== 'retry' && isAvailabilityError(err);
  }
}

/** A connection acquired for one statement: who hears of it, and who may keep it. */
interface OneOffLease {
  readonly leases: LeaseListener | undefined;
  readonly adopt: Adopter | undefined;
}
