import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import {
  forgetPassword,
  type PasswordSource,
  passwordSource,
  type ResetOnRelease,
  type ResolvedPoolConfig,
} from '../config/index.js';
import {
  ConfigError,
  type ConfigIssue,
  NodeConnectionError,
  type NodeLabel,
  type PoolFigures,
  PoolTimeoutError,
} from '../errors/index.js';
import { untraced } from '../telemetry/index.js';
import { ConnectTimeoutError, PoolClosedError } from './errors.js';
import { ReportedSettings } from './reported-settings.js';

/**
 * The pool settings of the config (see ResolvedPoolConfig for what each means), minus the
 * pooling mode, which is the routing pool's business, plus what only the pool needs.
 */
export type NodePoolOptions = Omit<
  ResolvedPoolConfig,
  'pooling' | 'resetOnRelease' | 'maxUses' | 'exitOnIdle' | 'statementTimeoutMs'
> & {
  /** Default 'none'. */
  readonly resetOnRelease?: ResetOnRelease;
  readonly applicationName?: string;
  /** Close a connection once it served this many checkouts; 0 or absent = never. */
  readonly maxUses?: number;
  /**
   * false keeps idle connections' sockets referenced, so they hold the process open until the
   * idle timeout closes them (pg.Pool's default); true (the default here) lets it exit.
   */
  readonly exitOnIdle?: boolean;
  /** Source of randomness in [0, 1) for the recycle jitter (tests). */
  readonly random?: () => number;
};

export interface ConnectionConfig {
  readonly host: string;
  readonly port: number;
  readonly database?: string;
  readonly user?: string;
  /** A string, or a closure returning it (kept out of every object graph; see credentials.ts). */
  readonly password?: string | PasswordSource;
  readonly ssl?: boolean | ConnectionOptions;
  /** libpq `options` (`-c statement_timeout=5s ...`), sent at connect. */
  readonly options?: string;
}

export interface PooledConnection {
  readonly client: pg.Client;
  /**
   * Return to the pool. Pass an Error (or true) to destroy instead (broken or session-dirty
   * connection). Idempotent; a second call is a no-op.
   */
  release(destroy?: Error | boolean): void;
  /**
   * True when the server reported a setting changing since this lease began (ParameterStatus:
   * search_path, role via is_superuser, TimeZone...): the connection now carries session state
   * pgpulse did not see in the SQL. Such a connection is closed on release.
   */
  reportedSettingsChanged?(): boolean;
}

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

/** A connection that has not finished end() by then is cut off at the socket. */
const END_GRACE_MS = 5_000;
/** Node timers cannot wait longer; larger values would fire after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;
/**
 * A connect or pre-ping silent for at least this share of acquireTimeoutMs makes the timed-out
 * acquire the node's fault (ConnectTimeoutError); a shorter one means the wait was mostly
 * queueing for a free connection (PoolTimeoutError).
 */
const NODE_BLAME_SHARE = 0.5;

type ConnState = 'connecting' | 'idle' | 'busy' | 'closing' | 'closed';

class Conn {
  state: ConnState = 'connecting';
  /** While connecting: the waiter counting on this connect, or null when none does. */
  owner: Waiter | null = null;
  expiresAt = Number.POSITIVE_INFINITY;
  idleSince = 0;
  generation = 0;
  broken = false;
  /** Set by end(): a connect that completes anyway is closed at once. */
  aborted = false;
  readonly settings: ReportedSettings;
  /** Checkouts served, for maxUses. */
  uses = 0;

  constructor(
    readonly client: pg.Client,
    readonly startedAt: number,
  ) {
    this.settings = new ReportedSettings(client);
  }
}

class Waiter {
  settled = false;
  /** A connect started for (or adopted by) this waiter; only while it is queued. */
  attempt: Conn | null = null;
  /** The idle connection being pre-pinged for this waiter. */
  pinging: Conn | null = null;
  pingStartedAt = 0;
  pingTimer: NodeJS.Timeout | null = null;
  timer: NodeJS.Timeout | null = null;
  readonly promise: Promise<PooledConnection>;
  resolve!: (lease: PooledConnection) => void;
  reject!: (err: Error) => void;

  constructor(readonly deadline: number) {
    this.promise = new Promise<PooledConnection>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

type ReleaseFn = (conn: Conn, destroy: Error | boolean | undefined) => void;

class Lease implements PooledConnection {
  readonly client: pg.Client;
  #conn: Conn | null;
  readonly #done: ReleaseFn;

  constructor(conn: Conn, done: ReleaseFn) {
    this.client = conn.client;
    this.#conn = conn;
    this.#done = done;
    conn.settings.lease();
    conn.uses++;
    // A connection in use keeps the process alive; an idle one may not (see exitOnIdle).
    refSocket(conn.client, true);
  }

  reportedSettingsChanged(): boolean {
    return this.#conn?.settings.changed() === true;
  }

  release(destroy?: Error | boolean): void {
    const conn = this.#conn;
    if (conn === null) return;
    this.#conn = null;
    this.#done(conn, destroy);
  }
}

/** Ring buffer: O(1) at both ends, unlike Array#shift on a long queue. */
class Deque<T> {
  #buf: (T | undefined)[] = new Array<T | undefined>(16).fill(undefined);
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#size === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#size) & (this.#buf.length - 1)] = item;
    this.#size++;
  }

  unshift(item: T): void {
    if (this.#size === this.#buf.length) this.#grow();
    this.#head = (this.#head - 1) & (this.#buf.length - 1);
    this.#buf[this.#head] = item;
    this.#size++;
  }

  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#buf[this.#head];
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#buf.length - 1);
    this.#size--;
    return item;
  }

  at(index: number): T | undefined {
    return index < this.#size
      ? this.#buf[(this.#head + index) & (this.#buf.length - 1)]
      : undefined;
  }

  #grow(): void {
    const next = new Array<T | undefined>(this.#buf.length * 2).fill(undefined);
    for (let i = 0; i < this.#size; i++) next[i] = this.at(i);
    this.#buf = next;
    this.#head = 0;
  }
}

/** pg keeps these off its public types; read-only peeks, never written. */
interface PgClientInternals {
  readonly _ending?: boolean;
}

/**
 * A connection pool for one node, over pg.Client, with what pg.Pool lacks for routing: overflow,
 * pre-ping, jittered recycling, in-flight figures, and acquire timeouts that name the node and
 * tell a full pool (PoolTimeoutError) from a silent node (ConnectTimeoutError).
 *
 * Waiters are served strictly in arrival order; idle connections are reused last-in first-out
 * so a few stay warm and the rest age out. A connect is started on behalf of one waiter (its
 * owner) so that a failing node fails that waiter with the driver's own error — which the
 * circuit breaker can count — instead of leaving everyone to time out.
 */
export class NodePool {
  readonly label: NodeLabel;
  /**
   * Errors of idle connections (pg emits them when the server goes away) and of connects that
   * nobody was waiting for (warm-up, replacements). Never called for a waiter's own failure.
   */
  onError?: (err: Error, client?: pg.Client) => void;
  onConnect?: (client: pg.Client) => void;
  /**
   * Runs on every new connection before anyone gets it (pg.Pool's 'connect' event and onConnect
   * hook); a throw or rejection fails that connect like a connection error would.
   */
  setup?: (client: pg.Client) => void | Promise<void>;
  /** A connection was closed and left the pool (pg.Pool's 'remove'). */
  onRemove?: (client: pg.Client) => void;

  // The password is a closure in here: pg calls it while authenticating; nothing shows it.
  readonly #clientConfig: pg.ClientConfig;
  readonly #password: PasswordSource | undefined;
  readonly #minSize: number;
  readonly #maxSize: number;
  readonly #capacity: number;
  readonly #acquireTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #prePing: boolean;
  readonly #prePingAfterIdleMs: number;
  readonly #recycleMs: number | null;
  readonly #recycleJitter: number;
  readonly #maxUses: number;
  readonly #exitOnIdle: boolean;
  readonly #random: () => number;
  /** The statement that clears a returning connection, or null for none. */
  readonly #resetSql: string | null;

  /** Stack: the most recently released connection is handed out first. */
  readonly #idle: Conn[] = [];
  /** FIFO of waiters; entries settled elsewhere stay until they reach the head. */
  readonly #queue = new Deque<Waiter>();
  readonly #connecting = new Set<Conn>();
  /** Every connection not yet closed (connecting, idle, in use, closing): terminate() cuts them. */
  readonly #live = new Set<Conn>();
  #waiting = 0;
  #open = 0;
  #inUse = 0;
  #closing = 0;
  /** Connects in progress that no waiter counts on (warm-up, or their waiter left). */
  #orphans = 0;
  #generation = 0;

  #created = 0;
  #destroyed = 0;
  #acquireTimeouts = 0;
  #prePingFailures = 0;
  #recycled = 0;

  #ending = false;
  #endPromise: Promise<void> | null = null;
  #endResolve: (() => void) | null = null;
  #sweepTimer: NodeJS.Timeout | null = null;

  constructor(label: NodeLabel, connection: ConnectionConfig, options: NodePoolOptions) {
    validate(options);
    // A copy: a caller may pass a richer object (a node config with its password) as the label,
    // and the label ends up on every error.
    this.label = Object.freeze({
      name: label.name,
      role: label.role,
      host: label.host,
      port: label.port,
    });
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
      connectionTimeoutMillis: Math.min(options.connectTimeoutMs, MAX_TIMER_MS),
      keepAlive: true,
      ...(options.applicationName === undefined
        ? {}
        : { application_name: options.applicationName }),
    };
    this.#minSize = options.minSize;
    this.#maxSize = options.maxSize;
    this.#capacity = options.maxSize + options.overflow;
    this.#acquireTimeoutMs = options.acquireTimeoutMs;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#prePing = options.prePing;
    this.#prePingAfterIdleMs = options.prePingAfterIdleMs;
    this.#recycleMs =
      options.recycleSeconds === null || options.recycleSeconds === 0
        ? null
        : options.recycleSeconds * 1000;
    this.#recycleJitter = options.recycleJitter;
    this.#maxUses = options.maxUses ?? 0;
    this.#exitOnIdle = options.exitOnIdle ?? true;
    this.#random = options.random ?? Math.random;
    this.#resetSql = RESET_SQL[options.resetOnRelease ?? 'none'];

    const horizon = Math.min(
      this.#idleTimeoutMs > 0 ? this.#idleTimeoutMs : Number.POSITIVE_INFINITY,
      this.#recycleMs === null
        ? Number.POSITIVE_INFINITY
        : this.#recycleMs * (1 - this.#recycleJitter),
    );
    if (Number.isFinite(horizon)) {
      // A quarter of the shortest horizon keeps closes within 25% late; capped so a long
      // timeout still gets swept every second and a tiny one does not spin.
      const every = Math.min(1_000, Math.max(10, horizon / 4));
      this.#sweepTimer = setInterval(this.#sweepIdle, every);
      this.#sweepTimer.unref();
    }
  }

  acquire(): Promise<PooledConnection> {
    if (this.#ending) return Promise.reject(new PoolClosedError(this.label));
    if (this.#waiting === 0 && this.#idle.length > 0) {
      const now = performance.now();
      for (;;) {
        const conn = this.#idle.pop();
        if (conn === undefined) break;
        if (now >= conn.expiresAt) {
          this.#recycleIdle(conn);
          continue;
        }
        conn.state = 'busy';
        this.#inUse++;
        if (this.#prePing && now - conn.idleSince > this.#prePingAfterIdleMs) {
          const waiter = this.#newWaiter(now);
          this.#ping(waiter, conn, now);
          return waiter.promise;
        }
        return Promise.resolve(new Lease(conn, this.#release));
      }
    }
    const waiter = this.#newWaiter(performance.now());
    this.#queue.push(waiter);
    this.#waiting++;
    this.#dispatch();
    return waiter.promise;
  }

  /**
   * Opens connections until minSize are open or connecting. Never rejects: failures go to
   * onError, since nobody is waiting on these connections.
   */
  warm(): Promise<void> {
    if (this.#ending) return Promise.resolve();
    const jobs: Promise<void>[] = [];
    for (let n = this.#minSize - (this.#open + this.#connecting.size); n > 0; n--) {
      jobs.push(this.#connect(null));
    }
    return Promise.all(jobs).then(() => undefined);
  }

  figures(): NodePoolFigures {
    const open = this.#open;
    const inUse = this.#inUse;
    return {
      total: open,
      idle: this.#idle.length,
      inUse,
      waiting: this.#waiting,
      max: this.#capacity,
      overflowInUse: Math.max(0, Math.min(inUse, open - this.#maxSize)),
      pending: this.#connecting.size,
      created: this.#created,
      destroyed: this.#destroyed,
      acquireTimeouts: this.#acquireTimeouts,
      prePingFailures: this.#prePingFailures,
      recycled: this.#recycled,
    };
  }

  /**
   * Closes idle connections, rejects waiters and future acquires, aborts connects in progress;
   * connections in use are closed when released. Resolves once every connection is closed.
   */
  end(): Promise<void> {
    if (this.#endPromise !== null) return this.#endPromise;
    this.#ending = true;
    if (this.#sweepTimer !== null) clearInterval(this.#sweepTimer);
    this.#sweepTimer = null;
    for (;;) {
      const waiter = this.#shiftWaiter();
      if (waiter === undefined) break;
      this.#detachAttempt(waiter);
      this.#settle(waiter);
      waiter.reject(new PoolClosedError(this.label));
    }
    for (const conn of this.#idle) this.#close(conn);
    this.#idle.length = 0;
    for (const conn of this.#connecting) {
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
    for (const conn of [...this.#live]) {
      conn.broken = true;
      if (conn.state === 'connecting') conn.aborted = true;
      else if (conn.state === 'idle' || conn.state === 'busy') this.#close(conn);
      // #close asked the client to end; cutting the socket makes that end happen at once.
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
    this.#generation++;
    for (const conn of this.#idle) this.#close(conn);
    this.#idle.length = 0;
    this.#cover();
  }

  // -------------------------------------------------------------------------------------------
  // Hand-out

  #newWaiter(now: number): Waiter {
    const waiter = new Waiter(now + this.#acquireTimeoutMs);
    waiter.timer = setTimeout(
      this.#onDeadline,
      Math.min(this.#acquireTimeoutMs, MAX_TIMER_MS),
      waiter,
    );
    return waiter;
  }

  /** Serves queued waiters from idle connections, then makes sure each has a connect coming. */
  #dispatch(): void {
    while (this.#waiting > 0 && this.#idle.length > 0) {
      const conn = this.#idle.pop()!;
      const now = performance.now();
      if (now >= conn.expiresAt) {
        this.#recycleIdle(conn);
        continue;
      }
      const waiter = this.#shiftWaiter()!;
      conn.state = 'busy';
      this.#inUse++;
      if (this.#prePing && now - conn.idleSince > this.#prePingAfterIdleMs) {
        this.#detachAttempt(waiter);
        this.#ping(waiter, conn, now);
      } else {
        this.#handOut(waiter, conn);
      }
    }
    this.#cover();
  }

  /**
   * Gives every queued waiter without a connect one: an orphaned connect in progress, or a new
   * one while below capacity. In arrival order, so the oldest waiters are covered first.
   */
  #cover(): void {
    if (this.#ending || this.#waiting === 0) return;
    const queue = this.#queue;
    for (let i = 0; i < queue.size; i++) {
      const waiter = queue.at(i)!;
      if (waiter.settled || waiter.attempt !== null) continue;
      const orphan = this.#orphans > 0 ? this.#findOrphan() : null;
      if (orphan !== null) {
        orphan.owner = waiter;
        waiter.attempt = orphan;
        this.#orphans--;
        continue;
      }
      if (this.#open + this.#connecting.size >= this.#capacity) return;
      void this.#connect(waiter);
    }
  }

  #findOrphan(): Conn | null {
    for (const conn of this.#connecting) {
      if (conn.owner === null && !conn.aborted) return conn;
    }
    return null;
  }

  /** `conn` is counted in use; `waiter` is out of the queue. */
  #handOut(waiter: Waiter, conn: Conn): void {
    const hadAttempt = this.#detachAttempt(waiter);
    this.#settle(waiter);
    waiter.resolve(new Lease(conn, this.#release));
    // The connect it no longer needs can serve the next waiter that has none.
    if (hadAttempt) this.#cover();
  }

  #ping(waiter: Waiter, conn: Conn, now: number): void {
    waiter.pinging = conn;
    waiter.pingStartedAt = now;
    // A connection gone silent (a firewall dropped its state, say) gets no longer than a new
    // one would, so that the acquire still has time to fall back to a fresh connect.
    if (this.#connectTimeoutMs < waiter.deadline - now) {
      waiter.pingTimer = setTimeout(this.#onPingTimeout, this.#connectTimeoutMs, waiter, conn);
    }
    // The empty query is the cheapest round trip the protocol has: no parse, no plan, no row.
    untraced(() => conn.client.query('')).then(
      () => this.#pingDone(waiter, conn, true),
      () => this.#pingDone(waiter, conn, false),
    );
  }

  #onPingTimeout = (waiter: Waiter, conn: Conn): void => {
    waiter.pingTimer = null;
    if (waiter.pinging !== conn) return;
    // The query then fails and #pingDone retries with another connection.
    conn.broken = true;
    destroySocket(conn.client);
  };

  #pingDone(waiter: Waiter, conn: Conn, ok: boolean): void {
    const forWaiter = waiter.pinging === conn;
    if (forWaiter) {
      waiter.pinging = null;
      clearPingTimer(waiter);
    }
    if (ok && !conn.broken && conn.generation === this.#generation) {
      if (!forWaiter || this.#ending) {
        this.#release(conn, this.#ending);
        if (forWaiter) this.#rejectClosed(waiter);
      } else {
        this.#handOut(waiter, conn);
      }
      return;
    }
    // A drain() during the ping is not the connection's failure.
    if (!ok || conn.broken) this.#prePingFailures++;
    this.#inUse--;
    this.#close(conn);
    if (!forWaiter) {
      this.#afterCapacityFreed();
    } else if (this.#ending) {
      this.#rejectClosed(waiter);
      this.#checkEnded();
    } else {
      // It was at the head of the line when it got this connection; it goes back there.
      this.#queue.unshift(waiter);
      this.#waiting++;
      this.#dispatch();
    }
  }

  #onDeadline = (waiter: Waiter): void => {
    if (waiter.settled) return;
    const now = performance.now();
    // Timers count from the event loop's cached clock and may fire a little early.
    if (now < waiter.deadline) {
      waiter.timer = setTimeout(this.#onDeadline, Math.ceil(waiter.deadline - now), waiter);
      return;
    }
    this.#acquireTimeouts++;
    const pinging = waiter.pinging;
    let err: Error;
    if (pinging !== null) {
      waiter.pinging = null;
      clearPingTimer(waiter);
      const silentMs = now - waiter.pingStartedAt;
      err =
        silentMs >= this.#acquireTimeoutMs * NODE_BLAME_SHARE
          ? new ConnectTimeoutError(this.label, 'pre-ping', silentMs)
          : new PoolTimeoutError(this.label, this.figures(), this.#acquireTimeoutMs);
      // A connection that does not answer a ping is not worth keeping; its query then fails
      // and #pingDone does the accounting.
      pinging.broken = true;
      destroySocket(pinging.client);
    } else {
      const attempt = waiter.attempt;
      const silentMs = attempt === null ? 0 : now - attempt.startedAt;
      err =
        attempt !== null && silentMs >= this.#acquireTimeoutMs * NODE_BLAME_SHARE
          ? new ConnectTimeoutError(this.label, 'connect', silentMs)
          : new PoolTimeoutError(this.label, this.figures(), this.#acquireTimeoutMs);
      this.#waiting--;
      this.#detachAttempt(waiter);
    }
    waiter.settled = true;
    waiter.timer = null;
    this.#trimQueue();
    waiter.reject(err);
    // Its connect keeps going and serves whoever is next.
    this.#cover();
  };

  // -------------------------------------------------------------------------------------------
  // Connect

  #connect(owner: Waiter | null): Promise<void> {
    const client = new pg.Client(this.#clientConfig);
    const conn = new Conn(client, performance.now());
    conn.owner = owner;
    if (owner === null) this.#orphans++;
    else owner.attempt = conn;
    this.#connecting.add(conn);
    this.#live.add(conn);
    // Without a listener, an 'error' from a connection nobody is using crashes the process.
    client.on('error', (err: Error) => this.#onClientError(conn, err));
    return untraced(() => connectClient(client))
      .then(
        () => {
          forgetPassword(client, this.#password);
          return this.#runSetup(client);
        },
        (err: unknown) => {
          forgetPassword(client, this.#password);
          // Typed, with the node and the driver's error as cause; an abort by end() is not a
          // connection failure of the node, so it keeps its own error.
          throw this.#ending || conn.aborted ? err : new NodeConnectionError(this.label, err);
        },
      )
      .then(
        () => this.#onConnected(conn),
        (err: unknown) => this.#onConnectFailed(conn, err),
      );
  }

  #runSetup(client: pg.Client): void | Promise<void> {
    const setup = this.setup;
    if (setup === undefined) return;
    return setup(client);
  }

  #onConnected(conn: Conn): void {
    this.#connecting.delete(conn);
    this.#releaseOwner(conn);
    this.#open++;
    this.#created++;
    conn.state = 'busy';
    // broken: the socket died between the server's ready message and this callback.
    if (this.#ending || conn.aborted || conn.broken) {
      this.#close(conn);
      this.#afterCapacityFreed();
      return;
    }
    const now = performance.now();
    conn.generation = this.#generation;
    conn.expiresAt = this.#expiry(now);
    const onConnect = this.onConnect;
    if (onConnect !== undefined) {
      try {
        onConnect(conn.client);
      } catch (err) {
        this.#report(err);
      }
    }
    // The connection goes to the head of the line, which is not always the waiter that
    // started it: a release may have served that one already.
    const waiter = this.#shiftWaiter();
    if (waiter !== undefined) {
      this.#inUse++;
      this.#handOut(waiter, conn);
    } else if (this.#open > this.#maxSize) {
      this.#close(conn);
    } else {
      conn.state = 'idle';
      conn.idleSince = now;
      if (this.#exitOnIdle) refSocket(conn.client, false);
      this.#idle.push(conn);
    }
    this.#cover();
  }

  #onConnectFailed(conn: Conn, reason: unknown): void {
    this.#connecting.delete(conn);
    this.#live.delete(conn);
    conn.state = 'closed';
    destroySocket(conn.client);
    const err = toError(reason);
    const owner = conn.owner;
    this.#releaseOwner(conn);
    if (owner !== null) {
      // The caller gets the driver's own error (ECONNREFUSED, auth failure, ...) so it can
      // tell a dead node from a full pool.
      this.#waiting--;
      this.#settle(owner);
      this.#trimQueue();
      owner.reject(err);
    } else if (!this.#ending && !conn.aborted) {
      this.#report(err);
    }
    this.#afterCapacityFreed();
  }

  /** Forgets who a finished connect was for; the owner stays queued if still waiting. */
  #releaseOwner(conn: Conn): void {
    const owner = conn.owner;
    conn.owner = null;
    if (owner === null) this.#orphans--;
    else owner.attempt = null;
  }

  #onClientError(conn: Conn, err: Error): void {
    conn.broken = true;
    // In use, the statement fails with this error and release() discards the connection;
    // while connecting, connect() rejects. Only an idle connection needs handling here.
    if (conn.state !== 'idle') return;
    const index = this.#idle.indexOf(conn);
    if (index >= 0) this.#idle.splice(index, 1);
    this.#close(conn);
    this.#report(err, conn.client);
    this.#afterCapacityFreed();
  }

  // -------------------------------------------------------------------------------------------
  // Release and close

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
      conn.generation === this.#generation &&
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
    this.#inUse--;
    if (destroy || this.#ending || conn.broken || conn.generation !== this.#generation) {
      this.#close(conn);
      this.#afterCapacityFreed();
      return;
    }
    const now = performance.now();
    if (now >= conn.expiresAt || (this.#maxUses > 0 && conn.uses >= this.#maxUses)) {
      this.#recycled++;
      this.#close(conn);
      this.#afterCapacityFreed();
      this.#ensureMin();
      return;
    }
    if (this.#waiting > 0) {
      const waiter = this.#shiftWaiter();
      if (waiter !== undefined) {
        this.#inUse++;
        this.#handOut(waiter, conn);
        return;
      }
    }
    if (this.#open > this.#maxSize) {
      this.#close(conn);
      return;
    }
    conn.state = 'idle';
    conn.idleSince = now;
    if (this.#exitOnIdle) refSocket(conn.client, false);
    this.#idle.push(conn);
  }

  /** `conn` has already left the idle stack. */
  #recycleIdle(conn: Conn): void {
    this.#recycled++;
    this.#close(conn);
    this.#ensureMin();
  }

  #sweepIdle = (): void => {
    const idle = this.#idle;
    if (idle.length === 0) return;
    const now = performance.now();
    let kept = 0;
    let recycled = false;
    // Bottom of the stack first: those have been idle longest.
    for (let i = 0; i < idle.length; i++) {
      const conn = idle[i]!;
      if (now >= conn.expiresAt) {
        this.#recycled++;
        recycled = true;
        this.#close(conn);
      } else if (
        this.#idleTimeoutMs > 0 &&
        now - conn.idleSince >= this.#idleTimeoutMs &&
        this.#open > this.#minSize
      ) {
        this.#close(conn);
      } else {
        idle[kept++] = conn;
      }
    }
    idle.length = kept;
    if (recycled) this.#ensureMin();
  };

  /** Background connects up to minSize; their failures are reported, never retried here. */
  #ensureMin(): void {
    if (this.#ending) return;
    for (let n = this.#minSize - (this.#open + this.#connecting.size); n > 0; n--) {
      void this.#connect(null);
    }
  }

  #afterCapacityFreed(): void {
    if (this.#ending) this.#checkEnded();
    else this.#cover();
  }

  /** Ends an open connection without making anyone wait for it. */
  #close(conn: Conn): void {
    if (conn.state === 'closing' || conn.state === 'closed') return;
    this.#open--;
    this.#destroyed++;
    conn.state = 'closing';
    this.#closing++;
    const client = conn.client;
    const onRemove = this.onRemove;
    if (onRemove !== undefined) {
      try {
        onRemove(client);
      } catch (err) {
        this.#report(err);
      }
    }
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      conn.state = 'closed';
      this.#live.delete(conn);
      this.#closing--;
      this.#checkEnded();
    };
    // A server that stopped answering never acknowledges the goodbye; cut the socket then.
    const timer = setTimeout(() => {
      destroySocket(client);
      finish();
    }, END_GRACE_MS);
    timer.unref();
    client.end().then(finish, finish);
  }

  #checkEnded(): void {
    const resolve = this.#endResolve;
    if (resolve === null || this.#open > 0 || this.#connecting.size > 0 || this.#closing > 0) {
      return;
    }
    this.#endResolve = null;
    resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Small helpers

  #shiftWaiter(): Waiter | undefined {
    for (;;) {
      const waiter = this.#queue.shift();
      if (waiter === undefined) return undefined;
      if (waiter.settled) continue;
      this.#waiting--;
      return waiter;
    }
  }

  /** Drops settled waiters from the head, so a pool that only times out does not grow. */
  #trimQueue(): void {
    for (;;) {
      const head = this.#queue.peek();
      if (head === undefined || !head.settled) return;
      this.#queue.shift();
    }
  }

  /** Returns whether the waiter had a connect in progress, now orphaned. */
  #detachAttempt(waiter: Waiter): boolean {
    const attempt = waiter.attempt;
    if (attempt === null) return false;
    waiter.attempt = null;
    attempt.owner = null;
    this.#orphans++;
    return true;
  }

  #settle(waiter: Waiter): void {
    waiter.settled = true;
    if (waiter.timer !== null) clearTimeout(waiter.timer);
    waiter.timer = null;
  }

  #rejectClosed(waiter: Waiter): void {
    this.#settle(waiter);
    waiter.reject(new PoolClosedError(this.label));
  }

  #expiry(now: number): number {
    const base = this.#recycleMs;
    if (base === null) return Number.POSITIVE_INFINITY;
    return now + base * (1 + this.#recycleJitter * (2 * this.#random() - 1));
  }

  #report(reason: unknown, client?: pg.Client): void {
    const onError = this.onError;
    if (onError === undefined) return;
    try {
      onError(toError(reason), client);
    } catch {
      // A throwing listener runs inside a socket event; letting it escape would crash the
      // process over what is only a report.
    }
  }
}

const RESET_SQL: Readonly<Record<ResetOnRelease, string | null>> = {
  none: null,
  // Neither needs a writable server: each runs on a hot standby too.
  objects:
    'CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES',
  all: 'DISCARD ALL',
};

/** pg's client-side record of the statements it prepared on this connection. */
interface PgStatementCache {
  parsedStatements?: Record<string, string>;
}

/**
 * DISCARD ALL deallocates every prepared statement, but pg still believes its named
 * statements exist and would send only Bind for them ("prepared statement does not exist").
 */
function forgetPreparedStatements(client: pg.Client): void {
  const connection = client.connection as unknown as PgStatementCache;
  if (connection.parsedStatements !== undefined) connection.parsedStatements = {};
}

/** A connection left inside a transaction (or mid-end) must not be handed to the next caller. */
function isSessionDirty(client: pg.Client): boolean {
  const status = client.getTransactionStatus();
  return (
    status === 'T' || status === 'E' || (client as unknown as PgClientInternals)._ending === true
  );
}

function clearPingTimer(waiter: Waiter): void {
  if (waiter.pingTimer === null) return;
  clearTimeout(waiter.pingTimer);
  waiter.pingTimer = null;
}

/**
 * pg.Client#connect in its callback form: code that wraps or patches connect (APMs, tests)
 * often handles only that form, and the callback form works with every pg 8.
 */
function connectClient(client: pg.Client): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    client.connect((err?: Error) => (err ? reject(err) : resolve()));
  });
}

function refSocket(client: pg.Client, ref: boolean): void {
  const stream = client.connection.stream as { ref?: () => void; unref?: () => void };
  if (ref) stream.ref?.();
  else stream.unref?.();
}

function destroySocket(client: pg.Client): void {
  client.connection.stream.destroy();
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

function validate(options: NodePoolOptions): void {
  const issues: ConfigIssue[] = [];
  const check = (ok: boolean, field: string, message: string): void => {
    if (!ok) issues.push({ field: `pool.${field}`, message });
  };
  const int = (v: number, min: number): boolean => Number.isInteger(v) && v >= min;
  const ms = (v: number, min: number): boolean => Number.isFinite(v) && v >= min;
  check(int(options.maxSize, 1), 'maxSize', `must be a whole number >= 1 (got ${options.maxSize})`);
  check(
    int(options.minSize, 0) && options.minSize <= options.maxSize,
    'minSize',
    `must be a whole number from 0 to pool.maxSize (${options.maxSize}) (got ${options.minSize})`,
  );
  check(
    int(options.overflow, 0),
    'overflow',
    `must be a whole number >= 0 (got ${options.overflow})`,
  );
  check(
    ms(options.acquireTimeoutMs, 1),
    'acquireTimeoutMs',
    `must be a number of milliseconds > 0 (got ${options.acquireTimeoutMs})`,
  );
  check(
    ms(options.connectTimeoutMs, 1),
    'connectTimeoutMs',
    `must be a number of milliseconds > 0; without a limit a silent node holds pool slots forever (got ${options.connectTimeoutMs})`,
  );
  check(
    ms(options.idleTimeoutMs, 0),
    'idleTimeoutMs',
    `must be a number of milliseconds >= 0, 0 for never (got ${options.idleTimeoutMs})`,
  );
  check(
    ms(options.prePingAfterIdleMs, 0),
    'prePingAfterIdleMs',
    `must be a number of milliseconds >= 0 (got ${options.prePingAfterIdleMs})`,
  );
  check(
    options.recycleSeconds === null || ms(options.recycleSeconds, 0),
    'recycleSeconds',
    `must be a number of seconds >= 0, or 0 / null for never (got ${options.recycleSeconds})`,
  );
  check(
    ms(options.recycleJitter, 0) && options.recycleJitter <= 1,
    'recycleJitter',
    `must be a fraction from 0 to 1 (got ${options.recycleJitter})`,
  );
  if (issues.length > 0) throw new ConfigError(issues);
}
