import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { PoolingMode } from '../config/index.js';
import { currentScope } from '../context/index.js';
import { ClusterClosedError } from '../errors/index.js';
import { isAvailabilityError } from '../health/index.js';
import type { PooledConnection } from '../pool/index.js';
import { type ClusterNode, transactionStatus } from '../topology/index.js';
import type { Classification } from './classifier.js';
import type { Executor } from './executor.js';
import {
  isSubmittable,
  normalizeQueryArgs,
  type QueryCallback,
  type QueryRequest,
} from './query-args.js';

type ConnectCallback = (
  err: Error | undefined,
  client?: RoutedClient,
  done?: (release?: unknown) => void,
) => void;

/**
 * The pg.Pool-compatible face of a cluster. It *is* a pg.Pool to `instanceof` (drizzle and
 * others decide how to run transactions by that test), but every method is pgpulse's: reads go
 * to replicas, everything else to the primary, and `connect()` returns a client that pins a
 * real connection only while a transaction or session state needs it.
 */
export class RoutingPool extends pg.Pool {
  #closed = false;
  #endPromise: Promise<void> | undefined;

  constructor(
    private readonly executor: Executor,
    private readonly poolingMode: PoolingMode,
    private readonly closeCluster: () => Promise<void>,
  ) {
    // pg.Pool's own machinery stays idle: nothing here calls its connect.
    super({ max: 1 });
  }

  /** @internal behind `query`, whose public type stays pg.Pool's (see below). */
  routeQuery(first: unknown, second?: unknown, third?: unknown): unknown {
    if (isSubmittable(first)) {
      throw new TypeError(
        'pgpulse: pass a Cursor or QueryStream to a client from pool.connect(), as with pg.Pool',
      );
    }
    const request = normalizeQueryArgs(first, second, third);
    const result = this.#closed
      ? Promise.reject(new ClusterClosedError())
      : this.executor.runOnPool(request, currentScope());
    return settle(result, request.callback);
  }

  /** @internal behind `connect`. */
  routeConnect(callback?: ConnectCallback): Promise<RoutedClient> | undefined {
    const client = this.#closed
      ? undefined
      : new RoutedClient(this.executor, this.poolingMode, this);
    const result: Promise<RoutedClient> = client
      ? this.poolingMode === 'session'
        ? client.pinPrimary().then(() => client)
        : Promise.resolve(client)
      : Promise.reject(new ClusterClosedError());
    if (!callback) {
      void result.then(
        (c) => this.emit('acquire', c),
        () => {},
      );
      return result;
    }
    result.then(
      (c) => {
        this.emit('acquire', c);
        callback(undefined, c, (release?: unknown) => c.release(release));
      },
      (err: Error) => callback(err),
    );
    return undefined;
  }

  /** @internal behind `end`. */
  routeEnd(callback?: () => void): Promise<void> {
    this.#closed = true;
    this.#endPromise ??= this.closeCluster();
    if (callback)
      void this.#endPromise.then(
        () => callback(),
        () => callback(),
      );
    return this.#endPromise;
  }

  /** @internal the figures pg.Pool users read, summed over every node. */
  sumFigures(pick: (node: ClusterNode) => number): number {
    let total = 0;
    for (const node of this.executor.router.nodes) total += pick(node);
    return total;
  }

  /** @internal */
  get isClosed(): boolean {
    return this.#closed;
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
for (const [name, pick] of [
  ['totalCount', (n: ClusterNode) => n.pool.figures().total],
  ['idleCount', (n: ClusterNode) => n.pool.figures().idle],
  ['waitingCount', (n: ClusterNode) => n.pool.figures().waiting],
  ['expiredCount', () => 0],
] as const) {
  Object.defineProperty(RoutingPool.prototype, name, {
    configurable: true,
    get(this: RoutingPool) {
      return this.sumFigures(pick);
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

interface Pin {
  readonly node: ClusterNode;
  readonly connection: PooledConnection;
  /** Session state changed (SET, LISTEN, temp table, advisory lock...): never reuse it. */
  dirty: boolean;
  /** Kept until release (nextval: currval must answer from the same session), then reused. */
  held: boolean;
  /** A cursor or stream is reading from it. */
  streaming: boolean;
  readonly detach: () => void;
}

/**
 * What `pool.connect()` returns. Statements are serialised, as on a pg client. Outside a
 * transaction each statement is routed on its own; BEGIN, session state or a cursor pins one
 * real connection (invariant 2) until the transaction ends or the client is released.
 */
export class RoutedClient extends EventEmitter {
  #pin: Pin | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  #released = false;

  constructor(
    private readonly executor: Executor,
    private readonly mode: PoolingMode,
    private readonly pool: RoutingPool,
  ) {
    super();
  }

  escapeIdentifier(value: string): string {
    return pg.escapeIdentifier(value);
  }

  escapeLiteral(value: string): string {
    return pg.escapeLiteral(value);
  }

  /** The node holding this client's pinned connection, if any (for tests and diagnostics). */
  get pinnedNode(): string | undefined {
    return this.#pin?.node.name;
  }

  query(first: unknown, second?: unknown, third?: unknown): unknown {
    if (isSubmittable(first)) return this.submit(first);
    const request = normalizeQueryArgs(first, second, third);
    const run = () => this.run(request);
    const result = this.#tail.then(run, run);
    this.#tail = result.catch(() => {});
    return settle(result, request.callback);
  }

  release(err?: unknown): void {
    if (this.#released) {
      throw new Error('Release called on client which has already been released to the pool.');
    }
    this.#released = true;
    const pin = this.#pin;
    this.#pin = undefined;
    if (pin) {
      const finish = () => this.unpin(pin, err instanceof Error || err === true);
      // Let statements already queued on this client finish before the connection goes back.
      void this.#tail.then(finish, finish);
    }
    this.pool.emit('release', err instanceof Error ? err : undefined, this);
  }

  /** @internal session pooling: hold one primary connection for the whole checkout. */
  async pinPrimary(): Promise<void> {
    await this.executor.ready();
    const cls = this.executor.classify('BEGIN');
    const placement = { node: this.executor.router.writeNode(), reason: 'pinned' as const };
    await this.pin(placement.node, await this.executor.acquire(placement, cls));
  }

  private async run(request: QueryRequest): Promise<pg.QueryResult> {
    if (this.#released)
      throw new Error('Client was released to the pool; acquire a new one with pool.connect()');
    await this.executor.ready();
    const cls = this.executor.classify(request.text);
    if (
      !this.#pin &&
      (cls.transaction === 'begin' || cls.transaction === 'begin-read-only' || cls.session)
    ) {
      const placement = await this.executor.placeWithWaits(
        this.pinCls(cls),
        request.text,
        currentScope(),
      );
      await this.pin(placement.node, await this.executor.acquire(placement, cls));
    }
    const pin = this.#pin;
    if (!pin) return this.executor.run(request, currentScope(), cls);
    try {
      const result = await this.executor.execute(
        { node: pin.node, reason: 'pinned' },
        pin.connection,
        request,
        cls,
      );
      // Sequence state keeps the connection for currval/lastval until release; other session
      // state also keeps it from being reused afterwards.
      if (cls.session === 'sequence') pin.held = true;
      else if (cls.session) pin.dirty = true;
      return result;
    } catch (err) {
      if (isAvailabilityError(err)) {
        this.#pin = undefined;
        this.unpin(pin, true);
      }
      throw err;
    } finally {
      if (
        this.#pin === pin &&
        this.mode !== 'session' &&
        !pin.dirty &&
        !pin.held &&
        !pin.streaming
      ) {
        if (transactionStatus(pin.connection.client) === 'I') {
          this.#pin = undefined;
          this.unpin(pin, false);
        }
      }
    }
  }

  /** BEGIN READ ONLY may run on a replica; every other pinning statement needs the primary. */
  private pinCls(cls: Classification): Classification {
    if (cls.transaction === 'begin-read-only') return { ...cls, kind: 'read' };
    return cls.kind === 'write' ? cls : { ...cls, kind: 'write' };
  }

  private async pin(node: ClusterNode, connection: PooledConnection): Promise<void> {
    const client = connection.client;
    const onNotification = (msg: pg.Notification) => this.emit('notification', msg);
    const onNotice = (msg: unknown) => this.emit('notice', msg);
    client.on('notification', onNotification);
    client.on('notice', onNotice);
    this.#pin = {
      node,
      connection,
      dirty: false,
      held: false,
      streaming: false,
      detach: () => {
        client.off('notification', onNotification);
        client.off('notice', onNotice);
      },
    };
  }

  private unpin(pin: Pin, destroy: boolean): void {
    pin.detach();
    const dirty = destroy || pin.dirty || transactionStatus(pin.connection.client) !== 'I';
    pin.connection.release(dirty);
  }

  /** Cursors and streams read over many round trips, so they pin their connection. */
  private submit<T extends pg.Submittable & { text?: unknown }>(submittable: T): T {
    const text = typeof submittable.text === 'string' ? submittable.text : '';
    const start = async () => {
      await this.executor.ready();
      if (!this.#pin) {
        const cls = this.executor.classify(text);
        const placement = await this.executor.placeWithWaits(cls, text, currentScope());
        await this.pin(placement.node, await this.executor.acquire(placement, cls));
      }
      const pin = this.#pin!;
      pin.streaming = true;
      pin.connection.client.query(submittable);
    };
    this.#tail = this.#tail.then(start, start).catch((err: unknown) => {
      (submittable as unknown as EventEmitter).emit?.('error', err);
    });
    return submittable;
  }
}

function settle(
  result: Promise<pg.QueryResult>,
  callback: QueryCallback | undefined,
): Promise<pg.QueryResult> | undefined {
  if (!callback) return result;
  result.then(
    (res) => callback(null, res),
    (err: Error) => callback(err),
  );
  return undefined;
}
