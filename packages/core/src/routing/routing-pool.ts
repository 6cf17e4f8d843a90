import pg from 'pg';
import type { PoolingMode } from '../config/index.js';
import { currentScope, deriveScope, type ScopeChanges } from '../context/index.js';
import { ClusterClosedError, surfaceDriverError } from '../errors/index.js';
import type { RemoveReason } from '../pool/index.js';
import type { ClusterNode } from '../topology/index.js';
import { type CheckoutHold, holdForCheckout } from './checkout-hold.js';
import type { Executor } from './executor.js';
import type { LeaseListener } from './executor-hooks.js';
import { InFlightWork } from './in-flight.js';
import { isSubmittable, normalizeQueryArgs, type QueryRequest, settle } from './query-args.js';
import { type ClientOwner, RoutedClient } from './routed-client.js';
import { type PoolScope, scopedView } from './scoped-pool.js';

type ConnectCallback = (
  err: Error | undefined,
  client?: RoutedClient,
  done?: (release?: unknown) => void,
) => void;

/**
 * Runs on every new physical connection, on every node, before its first statement. It gets
 * the connection's face: statements sent on it while the hook runs go to that connection.
 */
export type ConnectionSetup = (client: RoutedClient) => void | Promise<void>;

/**
 * The pg.Pool-compatible face of a cluster. It *is* a pg.Pool to `instanceof` (drizzle and
 * others decide how to run transactions by that test), but every method is pgpulse's: reads go
 * to replicas, everything else to the primary, and `connect()` returns a client that pins a
 * real connection only while a transaction or session state needs it.
 *
 * Events, as pg.Pool's: 'connect' (a new physical connection, on any node: set-up statements
 * sent on it in the listener run before anything else on it), 'acquire' and 'release' (a
 * checkout, or a pool.query's connection), 'remove' (a physical connection closed), 'error'
 * (an idle connection failed; emitted only when someone listens, unlike pg, which crashes).
 */
export class RoutingPool extends pg.Pool {
  #ending = false;
  #closed = false;
  #endPromise: Promise<void> | undefined;
  readonly #work = new InFlightWork();
  /** close()'s deadline passed: every checked-out client's next statement fails. */
  #expired = false;
  readonly #setups: ConnectionSetup[] = [];
  /** The face of each physical connection (see RoutedClient). */
  readonly #faces = new WeakMap<pg.Client, RoutedClient>();
  #binary: boolean | undefined;
  #pipeline: boolean | undefined;
  readonly #owner: ClientOwner = {
    released: (client, err) => {
      this.#work.checkedIn(client);
      this.emit('release', err, client);
      this.#work.checkQuiet();
    },
    track: (work) => this.#work.track(work),
    expired: () => this.#expired,
    // Fixed by the config: read once (the routed client asks for pipeline per statement).
    binary: () => (this.#binary ??= this.executor.router.nodes.some((node) => node.pool.binary)),
    pipeline: () =>
      (this.#pipeline ??= this.executor.router.nodes.some((node) => node.pool.pipeline)),
  };
  /**
   * Statements and checkouts issued and not yet at a node's pool. pg.Pool counts a client in
   * `totalCount` (or the caller in `waitingCount`) within the very call; pgpulse first waits
   * for start-up and decides the node, so these stand in for them until then.
   */
  #unplaced = 0;
  /** pg.Pool's 'acquire' and 'release' for a pool.query's connection. */
  readonly #leaseAcquired = (client: pg.Client) => this.emit('acquire', this.faceOf(client));
  readonly #leaseReleased = (client: pg.Client, err: Error | undefined) =>
    this.emit('release', err, this.faceOf(client));

  constructor(
    private readonly executor: Executor,
    private readonly poolingMode: PoolingMode,
    private readonly closeCluster: () => Promise<void>,
  ) {
    // pg.Pool's own machinery stays idle: nothing here calls its connect.
    super({ max: 1 });
  }

  /**
   * Adds a set-up step for every new physical connection (pg-pool's `onConnect`): it may be
   * async; a throw or rejection fails the checkout or statement that opened the connection.
   */
  addConnectionSetup(setup: ConnectionSetup): void {
    this.#setups.push(setup);
  }

  /** @internal a node pool opened a connection: 'connect' listeners, then set-up hooks. */
  connectionOpened(client: pg.Client): Promise<void> {
    const face = new RoutedClient(this.executor, this.poolingMode, this.#owner, client);
    this.#faces.set(client, face);
    const setups = this.#setups;
    return face.setUp(async () => {
      this.emit('connect', face);
      for (const setup of setups) await setup(face);
    });
  }

  /**
   * @internal told why each connection was closed, before 'remove' (pg-pool's `log` option
   * reports it).
   */
  onRemoved?: (reason: RemoveReason) => void;

  /** @internal a node pool closed a connection. */
  connectionRemoved(client: pg.Client, reason: RemoveReason): void {
    this.onRemoved?.(reason);
    this.emit('remove', this.faceOf(client));
  }

  /** @internal an idle connection failed (already removed from its pool). */
  idleConnectionFailed(err: Error, client: pg.Client | undefined): void {
    if (this.listenerCount('error') === 0) return;
    const face = client ? this.faceOf(client) : undefined;
    if (face) Object.assign(err, { client: face });
    this.emit('error', err, face);
  }

  private faceOf(client: pg.Client): RoutedClient | pg.Client {
    return this.#faces.get(client) ?? client;
  }

  /** A checkout: the connection holdForCheckout gives, and its face when that is free. */
  private async checkout(fixed: ScopeChanges | undefined): Promise<RoutedClient> {
    const placed = this.placing();
    let held: CheckoutHold;
    try {
      // Once ready, the acquire starts in this very call, so the pool counts it at once.
      const pending = this.executor.pendingReady();
      if (pending) await pending;
      held = await holdForCheckout(this.executor.router, this.poolingMode, placed);
    } finally {
      placed();
    }
    const { node, lease } = held;
    let client = this.#faces.get(lease.client);
    if (!client || client.isCheckedOut) {
      client = new RoutedClient(this.executor, this.poolingMode, this.#owner);
    }
    client.checkout(node, lease, fixed);
    this.#work.checkedOut(client);
    this.emit('acquire', client);
    return client;
  }

  /**
   * @internal behind `query`, whose public type stays pg.Pool's (see below); `fixed` is the
   * scope of a `scoped()` view, derived per statement rather than entered.
   */
  routeQuery(first: unknown, second?: unknown, third?: unknown, fixed?: ScopeChanges): unknown {
    if (isSubmittable(first)) {
      throw new TypeError(
        'pgpulse: pass a Cursor or QueryStream to a client from pool.connect(), as with pg.Pool',
      );
    }
    if (typeof first === 'function') {
      // pg.Pool answers this through the callback, not with a throw.
      const err = new TypeError(
        'Passing a function as the first parameter to pool.query is not supported',
      );
      return settle(Promise.reject(err), first as (err: Error | null) => void, undefined);
    }
    let request: QueryRequest;
    try {
      request = normalizeQueryArgs(first, second, third);
    } catch (err) {
      const callback = [second, third].find((a) => typeof a === 'function');
      return settle(Promise.reject(err), callback as (err: Error | null) => void, undefined);
    }
    if (this.#ending)
      return settle(Promise.reject(new ClusterClosedError()), request.callback, undefined);
    const placed = this.placing();
    const leases: LeaseListener = {
      acquiring: placed,
      acquired: this.#leaseAcquired,
      released: this.#leaseReleased,
    };
    this.#work.started();
    const running = this.executor.runOnPool(
      request,
      fixed ? deriveScope(fixed) : currentScope(),
      leases,
    );
    return settle(this.settleQuery(running, placed), request.callback, undefined);
  }

  /** A pool.query's outcome, once it no longer counts as unplaced or in flight. */
  private async settleQuery(
    running: Promise<pg.QueryResult>,
    placed: () => void,
  ): Promise<pg.QueryResult> {
    try {
      return await running;
    } catch (err) {
      // Its connection was cut by close()'s deadline: say that, not "terminated".
      throw this.#expired ? new ClusterClosedError({ cause: err }) : surfaceDriverError(err);
    } finally {
      placed();
      this.#work.settled();
    }
  }

  /** @internal behind `connect`; `fixed` as in routeQuery, kept by the client until release. */
  routeConnect(
    callback?: ConnectCallback,
    fixed?: ScopeChanges,
  ): Promise<RoutedClient> | undefined {
    const result: Promise<RoutedClient> = this.#ending
      ? Promise.reject(new ClusterClosedError())
      : this.#work.track(
          this.checkout(fixed).catch((err: unknown) => {
            throw surfaceDriverError(err);
          }),
        );
    if (!callback) return result;
    result.then(
      (c) => process.nextTick(callback, undefined, c, (release?: unknown) => c.release(release)),
      // pg hands over a done() even on failure; there is nothing to give back, so it is a no-op.
      (err: Error) => process.nextTick(callback, err, undefined, () => {}),
    );
    return undefined;
  }

  /**
   * This pool with every statement of its `query` and of the clients its `connect` returns run
   * in `scope`, as if inside `cluster.primary()` / `cluster.replica()` /
   * `cluster.withConsistency()`, for code that takes a pool rather than a function (an ORM's
   * master connection, a job runner). The view is a `pg.Pool` to `instanceof`; everything but
   * `query` and `connect` is this pool's. An enclosing scope still supplies what `scope` leaves
   * out (its context's session, its other overrides).
   */
  scoped(scope: PoolScope): pg.Pool {
    // 'replica' is what cluster.replica() enters: eventual reads; a maxLagMs still bounds them.
    const changes: ScopeChanges =
      scope.target === 'replica'
        ? { target: 'auto', consistency: 'eventual', maxLagMs: scope.maxLagMs }
        : { target: scope.target, consistency: scope.consistency, maxLagMs: scope.maxLagMs };
    return scopedView(this, changes);
  }

  /**
   * @internal behind `end`: no new statements or checkouts; those already issued finish, then
   * the cluster closes. A second call fails, as pg.Pool's does.
   */
  routeEnd(callback?: (err?: Error) => void): Promise<void> | undefined {
    let result: Promise<void>;
    if (this.#ending) {
      result = Promise.reject(new Error('Called end on pool more than once'));
    } else {
      this.#ending = true;
      this.#endPromise ??= this.#work.drained().then(() => this.closeCluster());
      result = this.#endPromise;
    }
    return settle(result, callback, undefined);
  }

  /** @internal the cluster is closing by itself: refuse new work, without counting as end(). */
  shutDown(): void {
    this.#ending = true;
    this.#closed = true;
  }

  /**
   * @internal close(): resolves true once the statements already issued have settled and
   * every checked-out client is released, or false when `timeoutMs` passes first.
   */
  quiet(timeoutMs: number): Promise<boolean> {
    return this.#work.quiet(timeoutMs);
  }

  /**
   * @internal close()'s deadline passed: every checked-out client's next statement (and one
   * in flight, whose connection is being cut) fails with ClusterClosedError.
   */
  expire(): void {
    this.#expired = true;
    this.#ending = true;
    this.#closed = true;
  }

  /** Counts one statement or checkout as unplaced until the returned function is called. */
  private placing(): () => void {
    this.#unplaced++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#unplaced--;
    };
  }

  /**
   * pg.Pool's private list of its clients, which tools and pg-pool's own tests reach into:
   * the face of every open connection, node by node.
   */
  get _clients(): (RoutedClient | pg.Client)[] {
    const faces: (RoutedClient | pg.Client)[] = [];
    for (const node of this.executor.router.nodes) {
      for (const client of node.pool.clients()) faces.push(this.faceOf(client));
    }
    return faces;
  }

  /** pg.Pool's constructor assigns `_clients`; the list above is the truth. */
  set _clients(_ignored: unknown) {}

  /** @internal the figures pg.Pool users read, summed over every node. */
  sumFigures(pick: (node: ClusterNode) => number): number {
    let total = 0;
    for (const node of this.executor.router.nodes) total += pick(node);
    return total;
  }

  /**
   * @internal how the unplaced statements would count in pg.Pool: each takes an idle
   * connection, else opens one while there is room, else waits.
   */
  unplacedFigures(): { opening: number; waiting: number } {
    if (this.#unplaced === 0) return { opening: 0, waiting: 0 };
    let idle = 0;
    let room = 0;
    for (const node of this.executor.router.nodes) {
      const f = node.pool.figures();
      idle += f.idle;
      room += Math.max(0, f.max - f.total - f.pending);
    }
    const needing = Math.max(0, this.#unplaced - idle);
    const opening = Math.min(needing, room);
    return { opening, waiting: needing - opening };
  }

  /** @internal */
  get isClosed(): boolean {
    return this.#closed || this.#ending;
  }
}

// Users and ORMs see pg.Pool's own overloaded signatures; one implementation serves them all.
RoutingPool.prototype.query = function (this: RoutingPool, a: unknown, b?: unknown, c?: unknown) {
  return this.routeQuery(a, b, c);
} as pg.Pool['query'];
RoutingPool.prototype.connect = function (this: RoutingPool, callback?: ConnectCallback) {
  return this.routeConnect(callback);
} as pg.Pool['connect'];
RoutingPool.prototype.end = function (this: RoutingPool, callback?: () => void) {
  return this.routeEnd(callback);
} as pg.Pool['end'];

// pg's types declare these as fields; they are live figures here, so define them as getters.
// A connection being opened counts, as in pg.Pool's totalCount.
for (const [name, pick, unplaced] of [
  [
    'totalCount',
    (n: ClusterNode) => n.pool.figures().total + n.pool.figures().pending,
    (pool: RoutingPool) => pool.unplacedFigures().opening,
  ],
  ['idleCount', (n: ClusterNode) => n.pool.figures().idle, () => 0],
  [
    'waitingCount',
    (n: ClusterNode) => n.pool.figures().waiting,
    (pool: RoutingPool) => pool.unplacedFigures().waiting,
  ],
  ['expiredCount', () => 0, () => 0],
] as const) {
  Object.defineProperty(RoutingPool.prototype, name, {
    configurable: true,
    get(this: RoutingPool) {
      return this.sumFigures(pick) + unplaced(this);
    },
  });
}
// pg.Pool's constructor assigns these; the setter swallows that, the getter tells the truth.
for (const name of ['ending', 'ended'] as const) {
  Object.defineProperty(RoutingPool.prototype, name, {
    configurable: true,
    get(this: RoutingPool) {
      return this.isClosed;
    },
    set() {},
  });
}
