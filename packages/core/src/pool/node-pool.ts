import type pg from 'pg';
import { type NodeLabel, PoolClosedError, type PoolFigures } from '../errors/index.js';
import { untraced } from '../tracing/index.js';
import { BackgroundLeases } from './background-leases.js';
import { type Clock, systemClock } from './clock.js';
import {
  type Conn,
  destroySocket,
  forgetPreparedStatements,
  isSessionDirty,
  type PooledConnection,
  RESET_SQL,
  type ReleaseFn,
  type RemoveReason,
  toError,
} from './connection.js';
import { ConnectionSet } from './connections.js';
import { Dispatcher } from './dispatcher.js';
import { type ConnectionConfig, type NodePoolOptions, validateNodePoolOptions } from './options.js';

export interface NodePoolFigures extends PoolFigures {
  /** Connections in use beyond maxSize. */
  readonly overflowInUse: number;
  /** Connects in progress. */
  readonly pending: number;
  readonly created: number;
  readonly destroyed: number;
  /** Acquires rejected at their deadline (PoolTimeoutError or ConnectTimeoutError). */
  readonly acquireTimeouts: number;
  readonly prePingFailures: number;
  readonly recycled: number;
}

/**
 * A connection pool for one node, over pg.Client, with what pg.Pool lacks for routing: overflow,
 * pre-ping, jittered recycling, in-flight figures, and acquire timeouts that name the node and
 * tell a full pool (PoolTimeoutError) from a silent node (ConnectTimeoutError).
 *
 * Waiters are served strictly in arrival order (Dispatcher); idle connections are reused
 * last-in first-out so a few stay warm and the rest age out. The connections themselves
 * (opening, idle and lifetime timers, closing) live in ConnectionSet. This class is the face:
 * acquire, the release policy (reset, reuse or close), warm-up, drain and end.
 */
/**
 * What a node pool reports, given once to its constructor (the internal hook style): pg.Pool's
 * 'connect' set-up, 'remove' and 'error' for every physical connection.
 */
export interface NodePoolListener {
  /**
   * Runs on every new connection before anyone gets it (pg.Pool's 'connect' event and onConnect
   * hook); a throw or rejection fails that connect like a connection error would.
   */
  readonly setup?: (client: pg.Client) => void | Promise<void>;
  /** A connection was closed and left the pool (pg.Pool's 'remove'), and why. */
  readonly removed?: (client: pg.Client, reason: RemoveReason) => void;
  /**
   * Errors of idle connections (pg emits them when the server goes away) and of connects that
   * nobody was waiting for (warm-up, replacements). Never called for a waiter's own failure.
   */
  readonly error?: (err: Error, client?: pg.Client) => void;
}

export class NodePool {
  readonly label: NodeLabel;
  readonly #listener: NodePoolListener;

  readonly #conns: ConnectionSet;
  readonly #dispatcher: Dispatcher;
  readonly #clock: Clock;
  readonly #minSize: number;
  readonly #maxSize: number;
  readonly #capacity: number;
  readonly #maxUses: number;
  /** Keep minSize connections open ahead of demand (pgpulse), or only keep idle ones (pg). */
  readonly #warm: boolean;
  /** The statement that clears a returning connection, or null for none. */
  readonly #resetSql: string | null;

  /** pgpulse's own background work (acquireOwn). */
  readonly #background: BackgroundLeases;

  #ending = false;
  #endPromise: Promise<void> | null = null;
  #endResolve: (() => void) | null = null;

  constructor(
    label: NodeLabel,
    connection: ConnectionConfig,
    options: NodePoolOptions,
    listener: NodePoolListener = {},
  ) {
    validateNodePoolOptions(options);
    this.#listener = listener;
    // A copy: a caller may pass a richer object (a node config with its password) as the label,
    // and the label ends up on every error.
    this.label = Object.freeze({
      name: label.name,
      role: label.role,
      host: label.host,
      port: label.port,
    });
    this.#clock = options.clock ?? systemClock;
    this.#conns = new ConnectionSet(
      this.label,
      connection,
      options,
      this.#clock,
      {
        idleFailed: (conn, err) => {
          this.#report(err, conn.client);
          this.#afterCapacityFreed();
        },
        closed: () => this.#checkEnded(),
        recycled: () => this.#ensureMin(),
      },
      (err) => this.#report(err),
    );
    this.#conns.setup = listener.setup;
    this.#conns.onRemove = listener.removed;
    this.#dispatcher = new Dispatcher(
      {
        label: this.label,
        conns: this.#conns,
        clock: this.#clock,
        ending: () => this.#ending,
        release: this.#release,
        figures: () => this.figures(),
        report: (err) => this.#report(err),
        afterCapacityFreed: () => this.#afterCapacityFreed(),
      },
      options,
    );
    this.#background = new BackgroundLeases(this.label, this.#dispatcher, this.#conns, this.#clock);
    this.#minSize = options.minSize;
    this.#maxSize = options.maxSize;
    this.#capacity = options.maxSize + options.overflow;
    this.#maxUses = options.maxUses ?? 0;
    this.#warm = options.warm ?? true;
    this.#resetSql = RESET_SQL[options.resetOnRelease ?? 'none'];
  }

  /** The application's connections ask for binary results (pool.binary). */
  get binary(): boolean {
    return this.#conns.binary;
  }

  /** The application's connections pipeline statements (pool.pipeline). */
  get pipeline(): boolean {
    return this.#conns.pipeline;
  }

  acquire(): Promise<PooledConnection> {
    if (this.#ending) return Promise.reject(new PoolClosedError(this.label));
    return this.#dispatcher.acquire();
  }

  /**
   * acquire() for a statement's hot path: an idle connection that needs no pre-ping comes back
   * as is, sparing a promise and a microtask per statement; otherwise the same promise.
   */
  acquireNow(): PooledConnection | Promise<PooledConnection> {
    if (this.#ending) return Promise.reject(new PoolClosedError(this.label));
    return this.#dispatcher.acquireNow();
  }

  /**
   * A connection for pgpulse's own background work (a slow statement's EXPLAIN), which must
   * not change the pool's size or figures: see BackgroundLeases.
   */
  acquireOwn(waitMs: number): Promise<PooledConnection> {
    if (this.#ending) return Promise.reject(new PoolClosedError(this.label));
    return this.#background.acquire(waitMs, () => this.#ending);
  }

  /**
   * Opens connections until minSize are open or connecting. Never rejects: failures go to
   * the listener's `error`, since nobody is waiting on these connections.
   */
  warm(): Promise<void> {
    if (this.#ending || !this.#warm) return Promise.resolve();
    const jobs: Promise<void>[] = [];
    for (let n = this.#minSize - (this.#conns.open + this.#conns.connecting.size); n > 0; n--) {
      jobs.push(this.#dispatcher.connect(null));
    }
    return Promise.all(jobs).then(() => undefined);
  }

  /**
   * Opens one connection when none is open or connecting, for a statement that will come
   * (#22, a cold start: the primary's first connection is opened while its probe is on the
   * wire, instead of after it). Nobody owns it: the first acquire adopts it, else it idles
   * like any released connection. Never rejects: a failure goes to the listener's `error`.
   */
  openAhead(): void {
    if (this.#ending || !this.#warm) return;
    if (this.#conns.open + this.#conns.connecting.size > 0) return;
    void this.#dispatcher.connect(null);
  }

  /** The open connections, idle or in use, oldest first (pg.Pool's `_clients`). */
  clients(): pg.Client[] {
    const open: pg.Client[] = [];
    for (const conn of this.#conns.live) {
      if (conn.state === 'idle' || conn.state === 'busy') open.push(conn.client);
    }
    return open;
  }

  figures(): NodePoolFigures {
    const conns = this.#conns;
    const open = conns.open;
    const dispatcher = this.#dispatcher;
    const inUse = dispatcher.inUse;
    return {
      total: open,
      idle: conns.idle.length,
      inUse,
      waiting: dispatcher.queue.waiting,
      max: this.#capacity,
      overflowInUse: Math.max(0, Math.min(inUse, open - this.#maxSize)),
      pending: conns.connecting.size,
      created: conns.created,
      destroyed: conns.destroyed,
      acquireTimeouts: dispatcher.acquireTimeouts,
      prePingFailures: dispatcher.prePingFailures,
      recycled: conns.recycled,
    };
  }

  /**
   * Closes idle connections, rejects waiters and future acquires, aborts connects in progress;
   * connections in use are closed when released. Resolves once every connection is closed.
   */
  end(): Promise<void> {
    if (this.#endPromise !== null) return this.#endPromise;
    this.#ending = true;
    this.#dispatcher.rejectAll();
    this.#background.cancelWaits();
    this.#conns.closeIdle('closed');
    for (const conn of this.#conns.connecting) {
      conn.aborted = true;
      // Its connect() rejects on the closed socket and #onConnectFailed does the accounting.
      destroySocket(conn.client);
    }
    this.#endPromise = new Promise<void>((resolve) => {
      this.#endResolve = resolve;
    });
    this.#checkEnded();
    return this.#endPromise;
  }

  /**
   * end(), and cut every connection at the socket now, those in use included: a statement in
   * flight on one fails, the server rolls back what was open, and its lease's release() later
   * only does the accounting. For a close() whose deadline passed, so nothing waits on a
   * borrower or on a server that stopped answering.
   */
  terminate(): Promise<void> {
    const ended = this.end();
    for (const conn of [...this.#conns.live]) {
      conn.broken = true;
      if (conn.state === 'connecting') conn.aborted = true;
      else if (conn.state === 'idle' || conn.state === 'busy') this.#conns.close(conn, 'closed');
      // close() asked the client to end; cutting the socket makes that end happen at once.
      destroySocket(conn.client);
    }
    return ended;
  }

  /**
   * Closes every idle connection now (after a failover, or when the node is known dead);
   * connections in use are closed when released instead of being reused.
   */
  drain(): void {
    if (this.#ending) return;
    this.#conns.generation++;
    this.#conns.closeIdle('closed');
    this.#dispatcher.cover();
  }

  // -------------------------------------------------------------------------------------------
  // Release

  #release: ReleaseFn = (conn, destroy) => {
    // A setting the server reported changing (set_config or SET ROLE inside a function, say)
    // is state pgpulse did not see in the SQL: that connection is not handed on.
    const settingsChanged = conn.settings.changed();
    conn.settings.endLease();
    const reusable =
      !destroy &&
      !settingsChanged &&
      !conn.broken &&
      !this.#ending &&
      conn.generation === this.#conns.generation &&
      !isSessionDirty(conn.client);
    const reset = this.#resetSql;
    if (!reusable || reset === null) {
      this.#finishRelease(conn, !reusable);
      return;
    }
    // Still counted in use until the reset is done: nobody else may have it meanwhile.
    untraced(() => conn.client.query(reset)).then(
      () => {
        if (reset === RESET_SQL.all) forgetPreparedStatements(conn.client);
        this.#finishRelease(conn, false);
      },
      () => this.#finishRelease(conn, true),
    );
  };

  #finishRelease(conn: Conn, destroy: boolean): void {
    this.#dispatcher.inUse--;
    const conns = this.#conns;
    if (destroy || this.#ending || conn.broken || conn.generation !== conns.generation) {
      conns.close(conn, this.#ending ? 'closed' : 'error');
      this.#afterCapacityFreed();
      return;
    }
    const expired = this.#clock.now() >= conn.expiresAt;
    if (expired || (this.#maxUses > 0 && conn.uses >= this.#maxUses)) {
      conns.recycled++;
      conns.close(conn, expired ? 'expired' : 'expended');
      this.#afterCapacityFreed();
      this.#ensureMin();
      return;
    }
    if (this.#dispatcher.offer(conn)) return;
    if (conns.open > this.#maxSize) {
      conns.close(conn, 'idle');
      return;
    }
    conns.putIdle(conn);
    this.#background.serve();
  }

  /** Background connects up to minSize; their failures are reported, never retried here. */
  #ensureMin(): void {
    if (this.#ending || !this.#warm) return;
    const conns = this.#conns;
    for (let n = this.#minSize - (conns.open + conns.connecting.size); n > 0; n--) {
      void this.#dispatcher.connect(null);
    }
  }

  #afterCapacityFreed(): void {
    if (this.#ending) this.#checkEnded();
    else this.#dispatcher.cover();
  }

  #checkEnded(): void {
    const resolve = this.#endResolve;
    if (resolve === null || !this.#conns.empty) return;
    this.#endResolve = null;
    resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Small helpers

  #report(reason: unknown, client?: pg.Client): void {
    const onError = this.#listener.error;
    if (onError === undefined) return;
    try {
      onError(toError(reason), client);
    } catch {
      // A throwing listener runs inside a socket event; letting it escape would crash the
      // process over what is only a report.
    }
  }
}
