import {
  ConnectTimeoutError,
  type NodeLabel,
  PoolClosedError,
  type PoolFigures,
  PoolTimeoutError,
} from '../errors/index.js';
import { untraced } from '../tracing/index.js';
import type { Clock } from './clock.js';
import {
  type Conn,
  destroySocket,
  Lease,
  type PooledConnection,
  type ReleaseFn,
  toError,
} from './connection.js';
import type { ConnectionSet } from './connections.js';
import type { NodePoolOptions } from './options.js';
import { Waiter, WaitQueue } from './wait-queue.js';

/**
 * A connect or pre-ping silent for at least this share of acquireTimeoutMs makes the timed-out
 * acquire the node's fault (ConnectTimeoutError); a shorter one means the wait was mostly
 * queueing for a free connection (PoolTimeoutError).
 */
const NODE_BLAME_SHARE = 0.5;

/** What the dispatcher needs from its pool. */
export interface DispatchContext {
  readonly label: NodeLabel;
  readonly conns: ConnectionSet;
  readonly clock: Clock;
  ending(): boolean;
  /** A lease's release(). */
  readonly release: ReleaseFn;
  figures(): PoolFigures;
  report(err: unknown): void;
  /** A connection left or a connect ended: serve the line, or finish end(). */
  afterCapacityFreed(): void;
}

/**
 * Matches acquires to connections: the line of waiters (strictly first come, first served),
 * the connects started for them, pre-pings of idle connections, and the acquire deadline.
 *
 * A connect is started on behalf of one waiter (its owner) so that a failing node fails that
 * waiter with the driver's own error — which the circuit breaker can count — instead of
 * leaving everyone to time out. A connect whose waiter left (an orphan) serves the next one.
 */
export class Dispatcher {
  readonly queue = new WaitQueue();
  /** Connections handed out (or being pre-pinged or reset) right now. */
  inUse = 0;
  acquireTimeouts = 0;
  prePingFailures = 0;
  /** Connects in progress that no waiter counts on (warm-up, or their waiter left). */
  #orphans = 0;
  readonly #capacity: number;
  readonly #maxSize: number;
  readonly #acquireTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #prePing: boolean;
  readonly #prePingAfterIdleMs: number;

  constructor(
    private readonly ctx: DispatchContext,
    options: NodePoolOptions,
  ) {
    this.#capacity = options.maxSize + options.overflow;
    this.#maxSize = options.maxSize;
    this.#acquireTimeoutMs = options.acquireTimeoutMs;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#prePing = options.prePing;
    this.#prePingAfterIdleMs = options.prePingAfterIdleMs;
  }

  acquire(): Promise<PooledConnection> {
    const got = this.acquireNow();
    return got instanceof Promise ? got : Promise.resolve(got);
  }

  /** acquire(), but an idle connection that needs no pre-ping comes back as is, not in a promise. */
  acquireNow(): PooledConnection | Promise<PooledConnection> {
    const { conns, clock } = this.ctx;
    if (this.queue.waiting === 0) {
      const conn = conns.takeIdle();
      if (conn !== undefined) {
        conn.state = 'busy';
        this.inUse++;
        const now = clock.now();
        if (!this.#needsPing(conn, now)) return new Lease(conn, this.ctx.release);
        const waiter = this.#newWaiter(now);
        this.#ping(waiter, conn, now);
        return waiter.promise;
      }
    }
    const waiter = this.#newWaiter(clock.now());
    this.queue.push(waiter);
    this.#dispatch();
    return waiter.promise;
  }

  /**
   * An idle connection, without pre-ping, when nobody is waiting for one; else undefined.
   * Never opens a connection or joins the line (pgpulse's own background work).
   */
  takeSpare(): PooledConnection | undefined {
    if (this.queue.waiting > 0 || this.ctx.ending()) return undefined;
    const conn = this.ctx.conns.takeIdle();
    if (conn === undefined) return undefined;
    conn.state = 'busy';
    this.inUse++;
    return new Lease(conn, this.ctx.release);
  }

  /** Gives a released connection to the head of the line; false when nobody waits. */
  offer(conn: Conn): boolean {
    const waiter = this.queue.shift();
    if (waiter === undefined) return false;
    this.inUse++;
    this.#handOut(waiter, conn);
    return true;
  }

  /** end(): every waiter fails with PoolClosedError. */
  rejectAll(): void {
    for (;;) {
      const waiter = this.queue.shift();
      if (waiter === undefined) return;
      this.#detachAttempt(waiter);
      this.#rejectClosed(waiter);
    }
  }

  /** Opens a connection for `owner` (or for nobody: warm-up, minSize). */
  connect(owner: Waiter | null): Promise<void> {
    const conns = this.ctx.conns;
    const conn = conns.start();
    conn.owner = owner;
    if (owner === null) this.#orphans++;
    else owner.attempt = conn;
    return conns
      .connect(conn, () => this.ctx.ending())
      .then(
        () => this.#onConnected(conn),
        (err: unknown) => this.#onConnectFailed(conn, toError(err)),
      );
  }

  /**
   * Gives every queued waiter without a connect one: an orphaned connect in progress, or a new
   * one while below capacity. In arrival order, so the oldest waiters are covered first.
   */
  cover(): void {
    if (this.ctx.ending() || this.queue.waiting === 0) return;
    const conns = this.ctx.conns;
    for (const waiter of this.queue.live()) {
      if (waiter.attempt !== null) continue;
      const orphan = this.#orphans > 0 ? this.#findOrphan() : null;
      if (orphan !== null) {
        orphan.owner = waiter;
        waiter.attempt = orphan;
        this.#orphans--;
        continue;
      }
      if (conns.open + conns.connecting.size >= this.#capacity) return;
      void this.connect(waiter);
    }
  }

  #newWaiter(now: number): Waiter {
    const waiter = new Waiter(now + this.#acquireTimeoutMs);
    waiter.timer = this.ctx.clock.schedule(
      this.#acquireTimeoutMs,
      () => this.#onDeadline(waiter),
      true,
    );
    return waiter;
  }

  #needsPing(conn: Conn, now: number): boolean {
    return this.#prePing && now - conn.idleSince > this.#prePingAfterIdleMs;
  }

  /** Serves queued waiters from idle connections, then makes sure each has a connect coming. */
  #dispatch(): void {
    while (this.queue.waiting > 0) {
      const conn = this.ctx.conns.takeIdle();
      if (conn === undefined) break;
      const waiter = this.queue.shift()!;
      conn.state = 'busy';
      this.inUse++;
      const now = this.ctx.clock.now();
      if (this.#needsPing(conn, now)) {
        this.#detachAttempt(waiter);
        this.#ping(waiter, conn, now);
      } else {
        this.#handOut(waiter, conn);
      }
    }
    this.cover();
  }

  #findOrphan(): Conn | null {
    for (const conn of this.ctx.conns.connecting) {
      if (conn.owner === null && !conn.aborted) return conn;
    }
    return null;
  }

  /** `conn` is counted in use; `waiter` is out of the queue. */
  #handOut(waiter: Waiter, conn: Conn): void {
    const hadAttempt = this.#detachAttempt(waiter);
    waiter.settle();
    waiter.resolve(new Lease(conn, this.ctx.release));
    // The connect it no longer needs can serve the next waiter that has none.
    if (hadAttempt) this.cover();
  }

  #ping(waiter: Waiter, conn: Conn, now: number): void {
    waiter.pinging = conn;
    waiter.pingStartedAt = now;
    // A connection gone silent (a firewall dropped its state, say) gets no longer than a new
    // one would, so that the acquire still has time to fall back to a fresh connect.
    if (this.#connectTimeoutMs < waiter.deadline - now) {
      waiter.pingTimer = this.ctx.clock.schedule(
        this.#connectTimeoutMs,
        () => {
          waiter.pingTimer = null;
          if (waiter.pinging !== conn) return;
          // The query then fails and #pingDone retries with another connection.
          conn.broken = true;
          destroySocket(conn.client);
        },
        true,
      );
    }
    // The empty query is the cheapest round trip the protocol has: no parse, no plan, no row.
    untraced(() => conn.client.query('')).then(
      () => this.#pingDone(waiter, conn, true),
      () => this.#pingDone(waiter, conn, false),
    );
  }

  #pingDone(waiter: Waiter, conn: Conn, ok: boolean): void {
    const { conns } = this.ctx;
    const ending = this.ctx.ending();
    const forWaiter = waiter.pinging === conn;
    if (forWaiter) {
      waiter.pinging = null;
      waiter.clearPingTimer();
    }
    if (ok && !conn.broken && conn.generation === conns.generation) {
      if (!forWaiter || ending) {
        this.ctx.release(conn, ending);
        if (forWaiter) this.#rejectClosed(waiter);
      } else {
        this.#handOut(waiter, conn);
      }
      return;
    }
    // A drain() during the ping is not the connection's failure.
    if (!ok || conn.broken) this.prePingFailures++;
    this.inUse--;
    conns.close(conn, 'error');
    if (forWaiter && !ending) {
      // It was at the head of the line when it got this connection; it goes back there.
      this.queue.unshift(waiter);
      this.#dispatch();
      return;
    }
    if (forWaiter) this.#rejectClosed(waiter);
    this.ctx.afterCapacityFreed();
  }

  #onDeadline(waiter: Waiter): void {
    if (waiter.settled) return;
    const now = this.ctx.clock.now();
    // Timers count from the event loop's cached clock and may fire a little early.
    if (now < waiter.deadline) {
      waiter.timer = this.ctx.clock.schedule(
        Math.ceil(waiter.deadline - now),
        () => this.#onDeadline(waiter),
        true,
      );
      return;
    }
    this.acquireTimeouts++;
    const pinging = waiter.pinging;
    const started = pinging !== null ? waiter.pingStartedAt : waiter.attempt?.startedAt;
    const silentMs = started === undefined ? 0 : now - started;
    const err =
      started !== undefined && silentMs >= this.#acquireTimeoutMs * NODE_BLAME_SHARE
        ? new ConnectTimeoutError(
            this.ctx.label,
            pinging !== null ? 'pre-ping' : 'connect',
            silentMs,
          )
        : new PoolTimeoutError(this.ctx.label, this.ctx.figures(), this.#acquireTimeoutMs);
    if (pinging !== null) {
      waiter.pinging = null;
      waiter.clearPingTimer();
      // A connection that does not answer a ping is not worth keeping; its query then fails
      // and #pingDone does the accounting.
      pinging.broken = true;
      destroySocket(pinging.client);
      waiter.settle();
    } else {
      this.#detachAttempt(waiter);
      waiter.settle();
      this.queue.left();
    }
    waiter.reject(err);
    // Its connect keeps going and serves whoever is next.
    this.cover();
  }

  #onConnected(conn: Conn): void {
    const conns = this.ctx.conns;
    this.#releaseOwner(conn);
    // broken: the socket died between the server's ready message and this callback.
    if (this.ctx.ending() || conn.aborted || conn.broken) {
      conns.close(conn, 'closed');
      this.ctx.afterCapacityFreed();
      return;
    }
    // The connection goes to the head of the line, which is not always the waiter that
    // started it: a release may have served that one already.
    if (this.offer(conn)) {
      // served
    } else if (conns.open > this.#maxSize) {
      conns.close(conn, 'idle');
    } else {
      conns.putIdle(conn);
    }
    this.cover();
  }

  #onConnectFailed(conn: Conn, err: Error): void {
    const owner = conn.owner as Waiter | null;
    this.#releaseOwner(conn);
    if (owner !== null) {
      // The caller gets the driver's own error (ECONNREFUSED, auth failure, ...) so it can
      // tell a dead node from a full pool.
      owner.settle();
      this.queue.left();
      owner.reject(err);
    } else if (!this.ctx.ending() && !conn.aborted) {
      this.ctx.report(err);
    }
    this.ctx.afterCapacityFreed();
  }

  /** Forgets who a finished connect was for; the owner stays queued if still waiting. */
  #releaseOwner(conn: Conn): void {
    const owner = conn.owner as Waiter | null;
    conn.owner = null;
    if (owner === null) this.#orphans--;
    else owner.attempt = null;
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

  #rejectClosed(waiter: Waiter): void {
    waiter.settle();
    waiter.reject(new PoolClosedError(this.ctx.label));
  }
}
