import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { PoolingMode } from '../config/index.js';
import { currentScope, deriveScope, type RouteScope, type ScopeChanges } from '../context/index.js';
import { ClusterClosedError, PgPulseError, surfaceDriverError } from '../errors/index.js';
import { isAvailabilityError } from '../health/index.js';
import { type PooledConnection, transactionStatus } from '../pool/index.js';
import type { ClusterNode } from '../topology/index.js';
import { acquire } from './acquire.js';
import { HeldConnection } from './checkout-hold.js';
import type { Classification } from './classification.js';
import type { Executor } from './executor.js';
import { closePin, needsPrimary, openPin, type Pin, pinClassification, replayOn } from './pin.js';
import { isSubmittable, normalizeQueryArgs, type QueryRequest, settle } from './query-args.js';

/** What a checked-out client tells the pool it came from. */
export interface ClientOwner {
  /** The client went back (pg.Pool's 'release' event). */
  released(client: RoutedClient, err: Error | undefined): void;
  /** Keeps end() waiting until the statement settles. */
  track<T>(work: Promise<T>): Promise<T>;
  /** close()'s deadline passed: statements fail with ClusterClosedError. */
  expired(): boolean;
  /** The pool's connections ask for binary results (pg.Client's `binary`). */
  binary(): boolean;
  /** The pool's connections pipeline statements (pg.Client's `pipeline`). */
  pipeline(): boolean;
}

/**
 * What `pool.connect()` returns. Statements run in the order they were issued, as on a pg
 * client: one at a time, except that on a pipelined pool the statements issued together
 * inside a transaction go out without waiting for each other's answers. Outside a
 * transaction each statement is routed on its own; BEGIN, session state or a cursor pins one
 * real connection (invariant 2) until the transaction ends or the client is released.
 *
 * Checkout itself takes a primary connection (the "hold"), as pg.Pool's does: connect() then
 * fails against a server that is down, waits when the pool is full, and the pool's figures
 * count it. The hold goes back at the client's first statement, which is routed like any
 * other.
 *
 * Each physical connection has one of these as its face (its "home"): pg.Pool's 'connect'
 * event and set-up hooks get it, and statements sent while they run go straight to that
 * connection. A checkout that lands on a connection whose face is free gets that face back,
 * so properties a set-up hook put on it are still there, as with pg.Pool.
 */
export class RoutedClient extends EventEmitter {
  #pin: Pin | undefined;
  /** Cursors and streams started outside a pin, each on its own connection until it drains. */
  readonly #streams = new Set<Pin>();
  #hold: HeldConnection | undefined;
  #tail: Promise<unknown> = Promise.resolve();
  /**
   * Statements sent one at a time that have not settled (see pipelinable). Not reset at
   * checkout: one still running from the last checkout keeps the next from pipelining.
   */
  #queued = 0;
  #released = false;
  /** end() was called while checked out: no more statements. */
  #ended = false;
  /** Checked out by someone right now. */
  #out = false;
  /** Set-up hooks are running: statements go straight to the home connection. */
  #settingUp = false;
  /** The scope of the `pool.scoped()` view this was checked out from, until release. */
  #fixed: ScopeChanges | undefined;

  constructor(
    private readonly executor: Executor,
    private readonly mode: PoolingMode,
    private readonly owner: ClientOwner,
    /** The physical connection this is the face of, if any. */
    private readonly home?: pg.Client,
  ) {
    super();
    // An 'error' emitted on the face of an idle connection is that connection's error, as on
    // a pg client: the pool drops the connection. In use, the statement fails on its own.
    this.on('error', (err: unknown) => {
      if (!this.#out && this.home) this.home.emit('error', err);
    });
  }

  /**
   * The protocol object of the connection this client stands for (pg-pool's tests and some
   * tools reach for it): the one it holds or has pinned, else its home connection.
   */
  get connection(): unknown {
    return this.standsFor()?.connection;
  }

  /** pg.Client's flag, which pg-pool and tools read: the connection is closing or closed. */
  get _ending(): boolean {
    if (this.#ended) return true;
    const client = this.standsFor() as (pg.Client & { _ending?: boolean }) | undefined;
    return client?._ending === true;
  }

  /** pg.Client's flag: statements with parameters return binary results (pool.binary). */
  get binary(): boolean {
    return this.owner.binary();
  }

  /** pg.Client's flag: the connections pipeline statements (pool.pipeline). */
  get pipeline(): boolean {
    return this.owner.pipeline();
  }

  /** Where this client's statements are routed from: its view's fixed scope, or the current one. */
  private scope(): RouteScope | undefined {
    return this.#fixed ? deriveScope(this.#fixed) : currentScope();
  }

  private standsFor(): pg.Client | undefined {
    return this.#hold?.lease.client ?? this.#pin?.connection.client ?? this.home;
  }

  /**
   * pg.Client#end: closes the connection this client holds (checked out: its hold or pin;
   * otherwise its home connection, as when reached through pool._clients). A checked-out
   * client takes no more statements; release() then only gives it back, and the pool drops
   * the closed connection. pg discourages calling this on a pooled client, and so do we.
   */
  end(callback?: (err?: Error) => void): Promise<void> | undefined {
    let target: pg.Client | undefined;
    if (this.#out) {
      this.#ended = true;
      target = this.#hold?.lease.client ?? this.#pin?.connection.client;
    } else {
      target = this.home;
    }
    const done = target ? target.end() : Promise.resolve();
    return settle(done, callback, undefined);
  }

  /** @internal true while someone has this checked out. */
  get isCheckedOut(): boolean {
    return this.#out;
  }

  /** @internal runs pg.Pool's 'connect' listeners and set-up hooks against the home connection. */
  async setUp(run: () => void | Promise<void>): Promise<void> {
    this.#settingUp = true;
    try {
      await run();
    } finally {
      this.#settingUp = false;
    }
  }

  /**
   * @internal hands this client out holding `lease` (a primary connection); in session
   * pooling the hold is a pin for the whole checkout.
   */
  checkout(node: ClusterNode, lease: PooledConnection, fixed?: ScopeChanges): void {
    this.#fixed = fixed;
    this.#out = true;
    this.#released = false;
    this.#ended = false;
    this.#tail = Promise.resolve();
    if (this.mode === 'session') this.#pin = openPin(node, lease, this);
    else this.#hold = new HeldConnection(lease, this);
  }

  /** Gives the checkout's connection back (destroyed when `destroy`). */
  private letGo(destroy: boolean): void {
    const hold = this.#hold;
    this.#hold = undefined;
    hold?.release(destroy);
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
    const home = this.home;
    if (this.#settingUp && home) {
      return (home.query as (...args: unknown[]) => unknown)(first, second, third);
    }
    if (isSubmittable(first)) return this.submit(first);
    let request: QueryRequest;
    try {
      request = normalizeQueryArgs(first, second, third);
    } catch (err) {
      const callback = [second, third].find((a) => typeof a === 'function');
      return settle(Promise.reject(err), callback as Parameters<typeof settle>[1], null);
    }
    const pipelined = this.pipelinable(request);
    let sent: Promise<pg.QueryResult>;
    if (pipelined !== undefined) {
      sent = this.runPipelined(pipelined.pin, pipelined.cls, request);
    } else {
      // The scope is taken now: a release right after the call must not change where it runs.
      const scope = this.scope();
      const run = () => this.run(request, scope);
      this.#queued++;
      sent = this.#tail.then(run, run);
    }
    const result = this.owner.track(
      sent.catch((err: unknown) => {
        // close()'s deadline cut this client's connection under its statement.
        if (this.owner.expired() && !(err instanceof ClusterClosedError))
          throw new ClusterClosedError({ cause: err });
        throw surfaceDriverError(err);
      }),
    );
    // What comes after waits for this one too; a pipelined statement does not replace the
    // statements still in flight ahead of it.
    this.#tail = pipelined
      ? Promise.all([this.#tail, result.catch(noop)])
      : result.then(this.#dequeued, this.#dequeued);
    return settle(result, request.callback, null);
  }

  /**
   * The pin a statement can be pipelined on, or undefined when it must wait its turn. Only
   * where the answers ahead of it cannot change where it runs: the pool pipelines, a
   * transaction is open on the pin (its statements stay there until COMMIT or ROLLBACK), every
   * statement ahead was itself pipelined (so none of them can end the transaction, move the
   * pin or open one), and the statement neither controls the transaction nor changes the
   * session (those go one at a time, as they decide what follows).
   */
  private pipelinable(
    request: QueryRequest,
  ): { readonly pin: Pin; readonly cls: Classification } | undefined {
    const pin = this.#pin;
    if (pin === undefined || this.#queued > 0 || !this.owner.pipeline()) return undefined;
    if (this.#released || this.#ended || this.#settingUp || pin.streaming) return undefined;
    if (transactionStatus(pin.connection.client) === 'I') return undefined;
    const cls = this.executor.classify(request.text);
    if (cls.transaction !== undefined || cls.session !== undefined) return undefined;
    return { pin, cls };
  }

  readonly #dequeued = (): void => {
    this.#queued--;
  };

  /** Sends a statement on the pin now, behind those already on its connection (pg queues them). */
  private runPipelined(
    pin: Pin,
    cls: Classification,
    request: QueryRequest,
  ): Promise<pg.QueryResult> {
    if (this.owner.expired()) return Promise.reject(new ClusterClosedError());
    return this.executor
      .execute({ node: pin.node, reason: 'pinned' }, pin.connection, request, cls)
      .catch((err: unknown) => {
        if (isAvailabilityError(err) && this.#pin === pin) {
          this.#pin = undefined;
          closePin(pin, true);
        }
        throw err;
      });
  }

  release(err?: unknown): void {
    if (this.#released) {
      throw new Error('Release called on client which has already been released to the pool.');
    }
    this.#released = true;
    this.#out = false;
    this.#fixed = undefined;
    const destroy = err instanceof Error || err === true;
    this.letGo(destroy);
    const pin = this.#pin;
    this.#pin = undefined;
    const streams = [...this.#streams];
    this.#streams.clear();
    const finish = () => {
      // A cursor still open holds a portal (and, outside a transaction, its snapshot): that
      // connection is closed rather than handed on mid-stream.
      if (pin) closePin(pin, destroy || pin.streaming);
      for (const stream of streams) closePin(stream, destroy || stream.streaming);
    };
    // Let statements already queued on this client finish before the connection goes back.
    if (pin || streams.length > 0) void this.#tail.then(finish, finish);
    this.owner.released(this, err instanceof Error ? err : undefined);
  }

  private async run(request: QueryRequest, scope: RouteScope | undefined): Promise<pg.QueryResult> {
    if (this.#released)
      throw new Error('Client was released to the pool; acquire a new one with pool.connect()');
    if (this.#ended) throw new Error('Client was closed and is not queryable');
    if (this.owner.expired()) throw new ClusterClosedError();
    // The checkout's connection goes back first: this statement is routed on its own merits.
    this.letGo(false);
    await this.executor.ready();
    const cls = this.executor.classify(request.text);
    // Behind a transaction-mode pooler, session state survives only inside a transaction.
    if (
      cls.session !== undefined &&
      cls.transaction === undefined &&
      (this.#pin === undefined || transactionStatus(this.#pin.connection.client) === 'I')
    ) {
      this.executor.refuseSessionBehindPooler(cls);
    }
    if (
      !this.#pin &&
      (cls.transaction === 'begin' || cls.transaction === 'begin-read-only' || cls.session)
    ) {
      const placement = await this.executor.placeWithWaits(
        pinClassification(cls),
        request.text,
        scope,
      );
      this.#pin = openPin(placement.node, await acquire(placement, cls), this);
    }
    let pin = this.#pin;
    if (pin && pin.node.role !== 'primary' && needsPrimary(cls)) pin = await this.toPrimary(pin);
    if (!pin) return this.executor.run(request, scope, cls, undefined, this.#adopt);
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
      if (cls.session === 'set' || cls.session === 'reset') pin.replay?.push(request);
      else if (cls.session) pin.replay = undefined;
      return result;
    } catch (err) {
      if (isAvailabilityError(err)) {
        this.#pin = undefined;
        closePin(pin, true);
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
          closePin(pin, false);
        }
      }
    }
  }

  /**
   * A write after a read-only transaction on a replica that changed the session (`BEGIN READ
   * ONLY; SET ...; COMMIT; UPDATE ...`): the session moves to a primary connection, its SETs
   * run again there first, so the write runs with them. Inside the transaction the write
   * stays where it is and the standby refuses it, as PostgreSQL would.
   */
  private async toPrimary(pin: Pin): Promise<Pin | undefined> {
    if (transactionStatus(pin.connection.client) !== 'I') return pin;
    this.#pin = undefined;
    closePin(pin, pin.dirty);
    if (!pin.dirty) return undefined;
    const replay = pin.replay;
    if (replay === undefined) {
      throw new PgPulseError(
        'PGPULSE_SESSION_ON_REPLICA',
        `This client changed its session on replica "${pin.node.name}" inside a READ ONLY ` +
          'transaction in a way that cannot be carried to the primary, and now sends a write. ' +
          'Begin the transaction without READ ONLY (it then runs on the primary), or release ' +
          'the client and write on a new one.',
      );
    }
    const begin = this.executor.classify('BEGIN');
    const placement = await this.executor.placeWithWaits(begin, 'BEGIN', this.scope());
    const connection = await acquire(placement, begin);
    await replayOn(connection, replay);
    const moved = openPin(placement.node, connection, this);
    moved.dirty = true;
    this.#pin = moved;
    return moved;
  }

  /**
   * A statement's connection came back with a setting the server reported changing (a
   * function ran set_config or SET ROLE): as on a pg client, the change must hold for this
   * client's next statements, so that connection becomes its pin (never reused after).
   */
  readonly #adopt = (node: ClusterNode, connection: PooledConnection): boolean => {
    if (this.#pin !== undefined || this.#released) return false;
    this.#pin = openPin(node, connection, this);
    this.#pin.dirty = true;
    this.#pin.replay = undefined;
    return true;
  };

  /**
   * Cursors and streams read over many round trips on one connection. Inside a pin they use
   * it; otherwise each gets a connection of its own, returned when the stream is done (pg's
   * 'drain'), so that the client's later statements are routed on their own merits: a stream
   * that started on a replica never takes a later write there.
   */
  private submit<T extends pg.Submittable & { text?: unknown }>(submittable: T): T {
    const text = typeof submittable.text === 'string' ? submittable.text : '';
    const start = async () => {
      this.letGo(false);
      await this.executor.ready();
      let pin = this.#pin;
      const cls = this.executor.classify(text);
      if (!pin) {
        const placement = await this.executor.placeWithWaits(cls, text, this.scope());
        const connection = await acquire(placement, cls);
        pin = openPin(placement.node, connection, this);
        this.#streams.add(pin);
      }
      const streaming = pin;
      streaming.streaming = true;
      if (streaming.onDrain) streaming.connection.client.off('drain', streaming.onDrain);
      // A stream or cursor counts in the node's figures as a statement does (in flight is
      // its leased connection, until it drains).
      const node = streaming.node;
      node.counters.queries++;
      if (cls.kind === 'read') node.counters.reads++;
      else node.counters.writes++;
      streaming.onDrain = () => this.streamDone(streaming);
      streaming.connection.client.once('drain', streaming.onDrain);
      streaming.connection.client.query(submittable);
    };
    this.#queued++;
    this.#tail = this.#tail
      .then(start, start)
      .catch((err: unknown) => {
        (submittable as unknown as EventEmitter).emit?.('error', err);
      })
      .then(this.#dequeued);
    return submittable;
  }

  private streamDone(pin: Pin): void {
    pin.streaming = false;
    pin.onDrain = undefined;
    if (this.#streams.delete(pin)) {
      closePin(pin, false);
      return;
    }
    if (
      this.#pin === pin &&
      this.mode !== 'session' &&
      !pin.dirty &&
      !pin.held &&
      transactionStatus(pin.connection.client) === 'I'
    ) {
      this.#pin = undefined;
      closePin(pin, false);
    }
  }
}

function noop(): void {}
