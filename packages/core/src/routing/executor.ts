import type pg from 'pg';
import { currentScope, type RouteScope } from '../context/index.js';
import {
  PrimaryUnavailableError,
  ReadNeedsPrimaryError,
  SessionBehindPoolerError,
  SessionOnPoolError,
  StatementTimeoutError,
  TransactionOnPoolError,
} from '../errors/index.js';
import { isAvailabilityError } from '../health/index.js';
import { type PooledConnection, transactionStatus } from '../pool/index.js';
import type { ClusterNode } from '../topology/index.js';
import { untraced } from '../tracing/index.js';
import type {
  Classification,
  Classifier,
  SessionEffect,
  TransactionControl,
} from './classification.js';
import type { QueryRequest } from './query-args.js';
import { asRefusedWrite, isStandbyRefusal } from './refusals.js';
import type { Router, RoutingReason } from './router.js';

/** Transaction statements that leave a transaction open, or only make sense inside one. */
const OPENS_OR_NEEDS_TRANSACTION: ReadonlySet<TransactionControl> = new Set([
  'begin',
  'begin-read-only',
  'savepoint',
  'release',
  'rollback-to',
]);

const TRANSACTION_WORDS: Readonly<Record<TransactionControl, string>> = {
  begin: 'BEGIN',
  'begin-read-only': 'BEGIN READ ONLY',
  commit: 'COMMIT',
  rollback: 'ROLLBACK',
  savepoint: 'SAVEPOINT',
  release: 'RELEASE SAVEPOINT',
  'rollback-to': 'ROLLBACK TO SAVEPOINT',
  'prepare-transaction': 'PREPARE TRANSACTION',
};

/** One statement on its way to a node, as observers see it. */
export interface StatementEvent {
  readonly node: ClusterNode;
  readonly reason: RoutingReason;
  readonly cls: Classification;
  readonly request: QueryRequest;
  readonly scope: RouteScope | undefined;
  /** Set while it runs when it was sent as an automatic prepared statement (telemetry). */
  prepared?: PreparedUse;
}

/** How an automatic prepared statement was sent: Parse with a name, by name only, or again. */
export type PreparedUse = 'prepare' | 'by-name' | 'reprepare';

/** Automatic prepared statements, as the executor sees them (implemented in prepared/). */
export interface PreparedStatementHook {
  /**
   * Sends the statement by name when its text recurs and it may be prepared, re-preparing it
   * once if the server finds its prepared form stale; undefined when it is to be sent as is.
   */
  run(
    client: pg.Client,
    request: QueryRequest,
    cls: Classification,
    node: ClusterNode,
    event: { prepared?: PreparedUse },
  ): Promise<pg.QueryResult> | undefined;
  /** A statement succeeded on this connection: DISCARD ALL, DEALLOCATE, a new search_path. */
  executed(client: pg.Client, cls: Classification, text: string): void;
}

export interface StatementOutcome {
  readonly durationMs: number;
  readonly error: unknown;
  readonly rowCount: number | null | undefined;
}

/** Hooks the cluster attaches to every statement (counting, telemetry, read-your-writes). */
export interface StatementObserver {
  routed(reason: RoutingReason, node: ClusterNode): void;
  /** Wraps the round trip (telemetry makes its span current here). */
  around<T>(event: StatementEvent, run: () => Promise<T>): Promise<T>;
  /** A statement finished on a node, successfully or not. */
  finished(event: StatementEvent, outcome: StatementOutcome): void;
  /** A replica refused a read as a write; it is retried on the primary next. */
  refused?(node: ClusterNode, request: QueryRequest, error: unknown): void;
}

/**
 * The query result cache, as the executor sees it (implemented in cache/). `read` returns
 * undefined when the statement did not ask for the cache; otherwise it serves the read or runs
 * it through `run`, which reports the node it was placed on.
 */
export interface ReadCacheHook {
  read(
    request: QueryRequest,
    cls: Classification,
    scope: RouteScope | undefined,
    run: (request: QueryRequest, placed: (node: ClusterNode) => void) => Promise<pg.QueryResult>,
  ): Promise<pg.QueryResult> | undefined;
  /** A statement on a pinned connection (transaction, session state) asked for the cache. */
  pinned(request: QueryRequest): 'bypass' | undefined;
  /** A statement finished on this connection (successfully or not): invalidate what it wrote. */
  executed(cls: Classification, request: QueryRequest, client: pg.Client): void;
}

/** Bounded waits instead of an immediate fallback or error; 0 disables each. */
export interface PlacementWaits {
  /** Writes while no primary is elected wait up to this long for one (failover.writeWaitMs). */
  readonly writeWaitMs: number;
  readonly primaryElected: (timeoutMs: number) => Promise<void>;
  /** Reads whose context's writes no replica has replayed yet wait up to this (consistency.waitMs). */
  readonly readWaitMs: number;
  readonly nextProbeRound: (timeoutMs: number) => Promise<void>;
  /**
   * Asks for the nodes' positions now (coalesced and rate-bounded by health.positionCheckMs), for
   * a read that went to the primary only because no replica is known to have replayed its
   * context's writes: the next read (or this one, when it may wait) can go to a replica sooner.
   */
  readonly requestPositions: () => void;
  readonly hasWrites: (scope: RouteScope | undefined) => boolean;
  /** Per-statement deadline (pool.statementTimeoutMs); 0 or absent = none. */
  readonly statementTimeoutMs?: number;
  /**
   * During a lazy cold start (only the primary probed, #22): what this statement must wait
   * for before it is placed (the first full health round, for a write or a context that
   * wrote), or undefined when it may go now.
   */
  readonly settling?: (
    cls: Classification,
    scope: RouteScope | undefined,
  ) => Promise<void> | undefined;
}

/**
 * Told when a one-off statement takes and gives back its connection (pg.Pool's 'acquire' and
 * 'release' events for pool.query).
 */
export interface LeaseListener {
  /** The statement is about to ask a node's pool for a connection (in the same tick). */
  acquiring?(): void;
  acquired(client: pg.Client): void;
  released(client: pg.Client, error: Error | undefined): void;
}

/** Takes over a one-off statement's connection (true), or lets it be released (false). */
export type Adopter = (node: ClusterNode, connection: PooledConnection) => boolean;

/** A statement's node and connection while it runs. */
export interface Placement {
  readonly node: ClusterNode;
  readonly reason: RoutingReason;
}

/** Session effects a transaction-mode pooler cannot keep outside a transaction, as words. */
const POOLER_REFUSED: Partial<Record<SessionEffect, string>> = {
  set: 'A session setting (SET or set_config without LOCAL) was sent',
  listen: 'LISTEN was sent',
  'advisory-lock': 'A session advisory lock (pg_advisory_lock and the like) was sent',
  'temp-table': 'A temporary table was created',
  prepare: 'SQL PREPARE was sent',
  'cursor-with-hold': 'DECLARE ... WITH HOLD was sent',
};

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
    private readonly waits: PlacementWaits,
    private readonly cache?: ReadCacheHook,
    private readonly prepared?: PreparedStatementHook,
  ) {}

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

  /**
   * place(), but a write may wait for a failover to elect a primary, and a read may wait for a
   * replica to replay its context's writes, each up to its configured bound. The placement
   * itself when nothing has to wait (every statement's common case: no promise, no tick).
   */
  placeWithWaits(
    cls: Classification,
    text: string,
    scope: RouteScope | undefined,
    started = performance.now(),
  ): Placement | Promise<Placement> {
    const settling = this.waits.settling?.(cls, scope);
    if (settling) return settling.then(() => this.waitForPlacement(cls, text, scope, started));
    let placement: Placement;
    try {
      placement = this.place(cls, text, scope);
    } catch (err) {
      return this.waitForPlacement(cls, text, scope, started, { failed: err });
    }
    if (placement.reason === 'read-your-writes' || placement.reason === 'no-eligible-replica') {
      // The same test waitForPlacement's first turn makes, here without a promise: a read on
      // a cluster without a usable replica (one node, say) is the common case, and a context
      // with no write to wait for takes the placement as it is.
      if (placement.reason === 'read-your-writes') this.waits.requestPositions();
      if (
        !this.waits.hasWrites(scope) ||
        this.waits.readWaitMs - (performance.now() - started) <= 0
      )
        return placement;
      return this.waitForPlacement(cls, text, scope, started, { placement, asked: true });
    }
    return placement;
  }

  /** placeWithWaits() past its first try: `first` is what that try gave, when it was made. */
  private async waitForPlacement(
    cls: Classification,
    text: string,
    scope: RouteScope | undefined,
    started: number,
    first?: { readonly placement?: Placement; readonly failed?: unknown; readonly asked?: true },
  ): Promise<Placement> {
    let readWaitOver = false;
    let tried = first;
    // placeWithWaits asked for the positions already for its placement.
    let asked = first?.asked === true;
    for (;;) {
      let placement: Placement;
      try {
        if (tried !== undefined && 'failed' in tried) throw tried.failed;
        placement = tried?.placement ?? this.place(cls, text, scope);
      } catch (err) {
        // Every placement that finds no primary waits for one, the read that needs its
        // context's write included (and a read whose replica wait ran out: it lands here too).
        const left = this.primaryWaitMs(err) - (performance.now() - started);
        if (left <= 0) throw err;
        tried = undefined;
        await this.waits.primaryElected(left);
        continue;
      }
      tried = undefined;
      const left = this.waits.readWaitMs - (performance.now() - started);
      // 'read-your-writes': a replica is up but has not replayed this context's write yet, or
      // no probe has bounded that write yet: ask for the positions rather than await a round.
      if (placement.reason === 'read-your-writes' && !asked) this.waits.requestPositions();
      asked = false;
      const replicaMayCatchUp =
        placement.reason === 'no-eligible-replica' || placement.reason === 'read-your-writes';
      if (readWaitOver || !replicaMayCatchUp || left <= 0 || !this.waits.hasWrites(scope)) {
        return placement;
      }
      placement.node.breaker.releaseTrial();
      await this.waits.nextProbeRound(left);
      if (performance.now() - started >= this.waits.readWaitMs) readWaitOver = true;
    }
  }

  /** How long a placement that failed with `err` may wait for a primary in all. */
  private primaryWaitMs(err: unknown): number {
    if (err instanceof PrimaryUnavailableError) return this.waits.writeWaitMs;
    if (err instanceof ReadNeedsPrimaryError)
      return Math.max(this.waits.writeWaitMs, this.waits.readWaitMs);
    return 0;
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
    // A text that holds its own transaction (`BEGIN; SET ...; COMMIT`) runs as usual.
    if (cls.transaction === undefined) this.refuseSessionBehindPooler(cls);
    const control = cls.transaction;
    if (
      control !== undefined &&
      (OPENS_OR_NEEDS_TRANSACTION.has(control) || cls.reason === 'transaction-control')
    ) {
      throw new TransactionOnPoolError(`${TRANSACTION_WORDS[control]} was sent`);
    }
    // Several statements in one text run on one connection: a SET there is for the rest.
    if ((cls.session === 'set' || cls.session === 'reset') && cls.reason !== 'multi-statement') {
      throw new SessionOnPoolError(
        cls.session === 'set' ? 'A session setting (SET or set_config) was sent' : 'RESET was sent',
      );
    }
    return cls;
  }

  /**
   * Behind a transaction-mode pooler (any node with `pooler: 'transaction'`: after a failover
   * the primary may be any of them), a statement that leaves session state on its server
   * connection is refused; the caller checks that it runs outside a transaction.
   */
  refuseSessionBehindPooler(cls: Classification): void {
    const what = cls.session === undefined ? undefined : POOLER_REFUSED[cls.session];
    if (what === undefined) return;
    if (!this.router.nodes.some((node) => node.config.pooler === 'transaction')) return;
    throw new SessionBehindPoolerError(what);
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
      second = this.place(cls, request.text, scope, first.node);
    } catch {
      throw err; // nowhere else to go: the first failure is the one that explains it
    }
    if (second.node === first.node) throw err;
    placed?.(second.node);
    return this.runOnce({ node: second.node, reason: 'retry' }, cls, request, leases);
  }

  /**
   * Acquires a connection on the node, counting failures toward its breaker. A write whose
   * connection could not even be opened was certainly not sent, which the error says. The
   * connection itself when an idle one was ready (no promise, no tick).
   */
  acquire(placement: Placement, cls: Classification): PooledConnection | Promise<PooledConnection> {
    let got: PooledConnection | Promise<PooledConnection>;
    try {
      // A connect or pre-ping is pgpulse's round trip, not the user's statement.
      got = untraced(() => placement.node.pool.acquireNow());
    } catch (err) {
      return Promise.reject(this.acquireFailed(placement, cls, err));
    }
    if (!(got instanceof Promise)) {
      if (cls.kind !== 'write' || got.reused !== true || got.broken === undefined) return got;
      got = Promise.resolve(got);
    }
    return got
      .then((connection) =>
        cls.kind === 'write' ? this.unlessHungUp(placement, connection) : connection,
      )
      .catch((err: unknown) => {
        throw this.acquireFailed(placement, cls, err);
      });
  }

  /** What a failed acquire throws, once counted toward the node's breaker. */
  private acquireFailed(placement: Placement, cls: Classification, err: unknown): unknown {
    this.recordOutcome(placement.node, err);
    if (cls.kind === 'write' && placement.node.role === 'primary' && isAvailabilityError(err)) {
      return new PrimaryUnavailableError(
        `could not connect to primary "${placement.node.name}" (${placement.node.host}:${placement.node.port})`,
        { cause: err },
      );
    }
    return err;
  }

  /**
   * A write, once sent, is never retried (it may have run), so it must not be sent on a
   * connection whose server already hung up. When a node dies, its goodbye (FATAL, then EOF)
   * waits in the socket until pg reads it on the next turn of the event loop; an idle connection
   * handed out before that turn looks alive. One poll of the sockets lets pg read it: a connection found broken
   * is discarded and a new one opened, whose failure is a PrimaryUnavailableError that
   * failover.writeWaitMs waits out. New connections just did their I/O and skip the turn.
   */
  private async unlessHungUp(
    placement: Placement,
    connection: PooledConnection,
  ): Promise<PooledConnection> {
    if (connection.reused !== true || connection.broken === undefined) return connection;
    await pollTurn();
    if (!connection.broken()) return connection;
    connection.release(true);
    return untraced(() => placement.node.pool.acquire());
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
      result = await this.observer.around(event, () =>
        this.withDeadline(
          node,
          connection,
          () =>
            // A transaction-mode pooler may run each statement on another server connection,
            // where the prepared name does not exist (PgBouncer < 1.21: 42P05 / 26000): no
            // automatic names, and the application's own are sent unnamed.
            (node.config.pooler === 'transaction'
              ? request.config.name === undefined
                ? undefined
                : client.query(unnamed(request.config))
              : prepared?.run(client, request, cls, node, event)) ??
            (request.plain
              ? client.query(request.text, request.config.values)
              : client.query(request.config)),
        ),
      );
      if (cls.session !== undefined) prepared?.executed(client, cls, request.text);
      finished = performance.now();
      node.recordLatency(finished - started);
      node.breaker.recordSuccess();
    } catch (err) {
      error = err;
      failed = true;
      this.recordOutcome(node, err);
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

  /**
   * pg's query_timeout, enforced here: past the deadline the socket is cut (a node that went
   * silent never answers a cancel), the statement fails with StatementTimeoutError whose cause
   * is the connection failure, so a read counts as an availability error and is retried once
   * elsewhere, and the connection is discarded on release.
   */
  private withDeadline<T>(
    node: ClusterNode,
    connection: PooledConnection,
    run: () => Promise<T>,
  ): Promise<T> {
    const timeoutMs = this.waits.statementTimeoutMs ?? 0;
    return timeoutMs > 0 ? this.withTimer(node, connection, run, timeoutMs) : run();
  }

  private async withTimer<T>(
    node: ClusterNode,
    connection: PooledConnection,
    run: () => Promise<T>,
    timeoutMs: number,
  ): Promise<T> {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      connection.client.connection.stream.destroy();
    }, timeoutMs);
    try {
      return await run();
    } catch (err) {
      if (expired) throw new StatementTimeoutError(node, timeoutMs, { cause: err });
      throw err;
    } finally {
      clearTimeout(timer);
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
    const acquiring = this.acquire(placement, cls);
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

/**
 * The statement without pg's `name`: the same text, values and options sent with the unnamed
 * statement, which the server parses each time (behind a transaction-mode pooler that does not
 * follow prepared statements).
 */
function unnamed(config: QueryRequest['config']): QueryRequest['config'] {
  const { name: _name, ...rest } = config;
  return rest;
}

/** A connection acquired for one statement: who hears of it, and who may keep it. */
interface OneOffLease {
  readonly leases: LeaseListener | undefined;
  readonly adopt: Adopter | undefined;
}

/**
 * Resolves after libuv has polled the sockets at least once. One setImmediate is not enough:
 * called from an I/O callback, it runs in this very loop iteration's check phase, before the
 * next poll; the second runs only after that poll.
 */
function pollTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
