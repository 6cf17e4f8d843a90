import type { ClockTimer } from './clock.js';
import type { Conn, PooledConnection } from './connection.js';
import { Deque } from './deque.js';

/** One acquire() waiting for a connection. */
export class Waiter {
  settled = false;
  /** A connect started for (or adopted by) this waiter; only while it is queued. */
  attempt: Conn | null = null;
  /** The idle connection being pre-pinged for this waiter. */
  pinging: Conn | null = null;
  pingStartedAt = 0;
  pingTimer: ClockTimer | null = null;
  timer: ClockTimer | null = null;
  readonly promise: Promise<PooledConnection>;
  resolve!: (lease: PooledConnection) => void;
  reject!: (err: Error) => void;

  constructor(readonly deadline: number) {
    this.promise = new Promise<PooledConnection>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Out of the race: its deadline no longer matters. */
  settle(): void {
    this.settled = true;
    this.timer?.cancel();
    this.timer = null;
  }

  clearPingTimer(): void {
    this.pingTimer?.cancel();
    this.pingTimer = null;
  }
}

/**
 * The line of waiters, served strictly in arrival order. A waiter settled elsewhere (its
 * deadline passed) stays in the ring until it reaches the head; `waiting` counts only the
 * live ones.
 */
export class WaitQueue {
  readonly #queue = new Deque<Waiter>();
  #waiting = 0;

  get waiting(): number {
    return this.#waiting;
  }

  push(waiter: Waiter): void {
    this.#queue.push(waiter);
    this.#waiting++;
  }

  /** Back to the head of the line (its pre-pinged connection failed). */
  unshift(waiter: Waiter): void {
    this.#queue.unshift(waiter);
    this.#waiting++;
  }

  /** The oldest live waiter, out of the line. */
  shift(): Waiter | undefined {
    for (;;) {
      const waiter = this.#queue.shift();
      if (waiter === undefined) return undefined;
      if (waiter.settled) continue;
      this.#waiting--;
      return waiter;
    }
  }

  /** A queued waiter gave up or failed where it stands; it leaves the count now. */
  left(): void {
    this.#waiting--;
    this.#trim();
  }

  /** Live waiters in arrival order. */
  *live(): Generator<Waiter> {
    const queue = this.#queue;
    for (let i = 0; i < queue.size; i++) {
      const waiter = queue.at(i)!;
      if (!waiter.settled) yield waiter;
    }
  }

  /** Drops settled waiters from the head, so a pool that only times out does not grow. */
  #trim(): void {
    for (;;) {
      const head = this.#queue.peek();
      if (head === undefined || !head.settled) return;
      this.#queue.shift();
    }
  }
}
