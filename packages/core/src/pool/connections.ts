import pg from 'pg';
import { forgetPassword, type PasswordSource, passwordSource } from '../config/index.js';
import { ConfigError, NodeConnectionError, type NodeLabel } from '../errors/index.js';
import { untraced } from '../tracing/index.js';
import type { Clock, ClockTimer } from './clock.js';
import {
  Conn,
  connectClient,
  destroySocket,
  type RemoveReason,
  refSocket,
  toError,
} from './connection.js';
import type { ConnectionConfig, NodePoolOptions } from './options.js';
import { hasProtocolStream, trackTransactionStatus } from './transaction-status.js';

/** A connection that has not finished end() by then is cut off at the socket. */
const END_GRACE_MS = 5_000;

/** What the set tells its pool. */
export interface ConnectionSetOwner {
  /** An idle connection failed and has been closed. */
  idleFailed(conn: Conn, err: Error): void;
  /** A connection finished closing: capacity may be free, end() may be done. */
  closed(): void;
  /** An idle connection reached its lifetime and was closed: top up to minSize. */
  recycled(): void;
}

/**
 * The physical connections of one node: opening them (the driver's connect, then the set-up
 * hook), the idle stack with its idle-timeout sweep and lifetime timers, and closing them. How
 * they are handed out is the pool's business (node-pool.ts).
 */
export class ConnectionSet {
  /** Runs on every new connection before anyone gets it; a throw fails that connect. */
  setup?: (client: pg.Client) => void | Promise<void>;
  /** A connection was closed and left the pool (pg.Pool's 'remove'). */
  onRemove?: (client: pg.Client, reason: RemoveReason) => void;

  /** Stack: the most recently released connection is handed out first. */
  readonly idle: Conn[] = [];
  readonly connecting = new Set<Conn>();
  /** Every connection not yet closed (connecting, idle, in use, closing): terminate() cuts them. */
  readonly live = new Set<Conn>();
  open = 0;
  closing = 0;
  created = 0;
  destroyed = 0;
  recycled = 0;
  /** Bumped by drain(): connections of an older generation are not reused. */
  generation = 0;
  /** The application's connections ask for binary results (pool.binary). */
  readonly binary: boolean;
  /** The application's connections pipeline statements (pool.pipeline). */
  readonly pipeline: boolean;

  // The password is a closure in here: pg calls it while authenticating; nothing shows it.
  readonly #clientConfig: pg.ClientConfig;
  readonly #password: PasswordSource | undefined;
  readonly #Client: typeof pg.Client;
  readonly #idleTimeoutMs: number;
  readonly #minSize: number;
  readonly #recycleMs: number | null;
  readonly #recycleJitter: number;
  readonly #exitOnIdle: boolean;
  readonly #random: () => number;
  /**
   * One timer for the whole idle stack, due when its oldest connection's idle time runs out:
   * a timer per release was set and cleared on every statement (a busy pool releases
   * thousands of times a second and times out almost never).
   */
  #idleSweep: ClockTimer | null = null;

  constructor(
    readonly label: NodeLabel,
    connection: ConnectionConfig,
    options: NodePoolOptions,
    readonly clock: Clock,
    private readonly owner: ConnectionSetOwner,
    private readonly report: (err: unknown) => void,
  ) {
    const password = connection.password;
    this.#password = typeof password === 'string' ? passwordSource(password) : password;
    this.#clientConfig = {
      host: connection.host,
      port: connection.port,
      database: connection.database,
      user: connection.user,
      ...(this.#password === undefined ? {} : { password: this.#password }),
      ssl: connection.ssl,
      ...(connection.options === undefined ? {} : { options: connection.options }),
      connectionTimeoutMillis: Math.min(options.connectTimeoutMs, 2_147_483_647),
      keepAlive: true,
      // The node's own application_name (its settings or URL) over the cluster's.
      ...(connection.application_name === undefined && options.applicationName === undefined
        ? {}
        : { application_name: connection.application_name ?? options.applicationName }),
      // pg's own flag: every extended-protocol statement on the connection asks for binary.
      ...(options.binary === true ? { binary: true } : {}),
      ...(options.pipeline === true ? { pipeline: true } : {}),
    } as pg.ClientConfig;
    this.binary = options.binary === true;
    this.pipeline = options.pipeline === true;
    this.#Client = options.Client ?? pg.Client;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#minSize = options.minSize;
    this.#recycleMs =
      options.recycleSeconds === null || options.recycleSeconds === 0
        ? null
        : options.recycleSeconds * 1000;
    this.#recycleJitter = options.recycleJitter;
    this.#exitOnIdle = options.exitOnIdle ?? true;
    this.#random = options.random ?? Math.random;
  }

  /** A new connection, counted as connecting; connect() opens it. */
  start(): Conn {
    const client = new this.#Client(this.#clientConfig);
    trackTransactionStatus(client);
    const conn = new Conn(client, this.clock.now());
    this.connecting.add(conn);
    this.live.add(conn);
    // Without a listener, an 'error' from a connection nobody is using crashes the process.
    client.on('error', (err: Error) => this.#onClientError(conn, err));
    return conn;
  }

  /**
   * Opens `conn` and runs the set-up hook. Resolves with it counted open and in use; rejects
   * (with the connection gone) with a NodeConnectionError naming the node, or, for an abort
   * by `ending()`, with the driver's own error.
   */
  async connect(conn: Conn, ending: () => boolean): Promise<void> {
    const client = conn.client;
    try {
      try {
        await untraced(() => connectClient(client));
      } catch (err) {
        // An abort by end() is not a connection failure of the node: it keeps its own error.
        throw ending() || conn.aborted ? err : new NodeConnectionError(this.label, err);
      } finally {
        forgetPassword(client, this.#password);
      }
      if (!hasProtocolStream(client)) throw lookAlikeRefused();
      if (this.pipeline && (client as { pipeline?: unknown }).pipeline !== true)
        throw pipelineUnsupported();
      await this.setup?.(client);
    } catch (err) {
      this.connecting.delete(conn);
      this.live.delete(conn);
      conn.state = 'closed';
      destroySocket(client);
      throw toError(err);
    }
    this.connecting.delete(conn);
    this.open++;
    this.created++;
    conn.state = 'busy';
    conn.generation = this.generation;
    conn.expiresAt = this.#expiry(conn);
  }

  /**
   * A connection to the node outside the set: the same settings and credentials (text
   * results, whatever pool.binary says), no set-up hook, not counted anywhere (pgpulse's own one-off work when no pooled one is free).
   */
  async openOutside(): Promise<pg.Client> {
    // pgpulse's own work parses what it reads as text, one statement at a time.
    const client = new this.#Client({
      ...this.#clientConfig,
      binary: false,
      pipeline: false,
    } as pg.ClientConfig);
    client.on('error', () => destroySocket(client));
    try {
      await untraced(() => connectClient(client));
    } catch (err) {
      destroySocket(client);
      throw new NodeConnectionError(this.label, err);
    } finally {
      forgetPassword(client, this.#password);
    }
    if (!hasProtocolStream(client)) {
      destroySocket(client);
      throw lookAlikeRefused();
    }
    return client;
  }

  /** Keeps `conn` for reuse: on top of the idle stack, its idle time counted from now. */
  putIdle(conn: Conn): void {
    conn.state = 'idle';
    conn.wasIdle = true;
    conn.idleSince = this.clock.now();
    if (this.#exitOnIdle) refSocket(conn.client, false);
    this.idle.push(conn);
    if (this.#idleTimeoutMs > 0 && this.#idleSweep === null) this.#sweepIdleSoon();
  }

  /** The most recently idle connection that is not past its lifetime, off the stack. */
  takeIdle(): Conn | undefined {
    const now = this.clock.now();
    for (;;) {
      const conn = this.idle.pop();
      if (conn === undefined) return undefined;
      if (now < conn.expiresAt) return conn;
      // Its lifetime timer has not fired yet (a busy event loop): recycle it here.
      this.recycled++;
      this.close(conn, 'expired');
      this.owner.recycled();
    }
  }

  /** Closes every idle connection. */
  closeIdle(reason: RemoveReason): void {
    for (const conn of this.idle.splice(0)) this.close(conn, reason);
  }

  /** Ends an open connection without making anyone wait for it. */
  close(conn: Conn, reason: RemoveReason): void {
    if (conn.state === 'closing' || conn.state === 'closed') return;
    conn.lifeTimer?.cancel();
    conn.lifeTimer = null;
    this.open--;
    this.destroyed++;
    conn.state = 'closing';
    this.closing++;
    const client = conn.client;
    try {
      this.onRemove?.(client, reason);
    } catch (err) {
      this.report(err);
    }
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      timer.cancel();
      conn.state = 'closed';
      this.live.delete(conn);
      this.closing--;
      this.owner.closed();
    };
    // A server that stopped answering never acknowledges the goodbye; cut the socket then.
    const timer = this.clock.schedule(
      END_GRACE_MS,
      () => {
        destroySocket(client);
        finish();
      },
      false,
    );
    client.end().then(finish, finish);
  }

  /** Nothing open, connecting or closing. */
  get empty(): boolean {
    return this.open === 0 && this.connecting.size === 0 && this.closing === 0;
  }

  /** When a connection opened now should be recycled (jittered lifetime). */
  #expiry(conn: Conn): number {
    const base = this.#recycleMs;
    if (base === null) return Number.POSITIVE_INFINITY;
    const lifetime = base * (1 + this.#recycleJitter * (2 * this.#random() - 1));
    conn.lifeTimer = this.clock.schedule(lifetime, () => this.#lifeExpired(conn), false);
    return this.clock.now() + lifetime;
  }

  /** Sets the sweep for when the oldest idle connection (the stack's bottom) times out. */
  #sweepIdleSoon(): void {
    const oldest = this.idle[0];
    if (oldest === undefined) return;
    const due = oldest.idleSince + this.#idleTimeoutMs - this.clock.now();
    this.#idleSweep = this.clock.schedule(Math.max(0, due), () => this.#sweepIdle(), false);
  }

  /**
   * Closes the connections idle for idleTimeoutMs, oldest first, then sets the sweep for the
   * next one. Within minSize connections stay however long they have been idle; the next
   * release sets the sweep again.
   */
  #sweepIdle(): void {
    this.#idleSweep = null;
    const now = this.clock.now();
    for (;;) {
      const oldest = this.idle[0];
      if (oldest === undefined || this.open <= this.#minSize) return;
      // Node's timers count whole milliseconds of a loop time read once per turn, so one set for
      // the oldest's due can fire up to 1 ms early by performance.now(); closing within that
      // millisecond keeps idleTimeoutMs as exact as pg's per-client timer instead of a turn late.
      if (now - oldest.idleSince < this.#idleTimeoutMs - TIMER_RESOLUTION_MS) break;
      this.idle.shift();
      this.close(oldest, 'idle');
    }
    this.#sweepIdleSoon();
  }

  #lifeExpired(conn: Conn): void {
    conn.lifeTimer = null;
    // In use, it is closed on release instead (the pool compares expiresAt).
    if (conn.state !== 'idle') return;
    this.#removeIdle(conn);
    this.recycled++;
    this.close(conn, 'expired');
    this.owner.recycled();
  }

  #removeIdle(conn: Conn): void {
    const index = this.idle.indexOf(conn);
    if (index >= 0) this.idle.splice(index, 1);
  }

  #onClientError(conn: Conn, err: Error): void {
    conn.broken = true;
    // In use, the statement fails with this error and release() discards the connection;
    // while connecting, connect() rejects. Only an idle connection needs handling here.
    if (conn.state !== 'idle') return;
    this.#removeIdle(conn);
    this.close(conn, 'error');
    this.owner.idleFailed(conn, err);
  }
}

/** The resolution of Node's timers (see #sweepIdle). */
const TIMER_RESOLUTION_MS = 1;

/** pool.pipeline asked of a pg (or a Client class) whose connections do not pipeline. */
function pipelineUnsupported(): ConfigError {
  return new ConfigError([
    {
      field: 'pool.pipeline',
      message:
        "the connection did not turn pipelining on (client.pipeline is not true): pg's Client pipelines from pg 8.23; upgrade pg, or leave pipeline off",
    },
  ]);
}

/**
 * A connected pool.Client instance pgpulse cannot follow: without pg's protocol stream it
 * cannot see a connection left inside a transaction, so handing it to the next caller would
 * leak one caller's transaction into another's statements.
 */
function lookAlikeRefused(): ConfigError {
  return new ConfigError([
    {
      field: 'pool.Client',
      message:
        "its instances have no pg protocol stream (client.connection emitting the server's messages): pgpulse follows each connection's transaction status and reported settings through it to keep a connection left inside a transaction from the next caller; extend pg.Client instead",
    },
  ]);
}
