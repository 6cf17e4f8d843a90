import type pg from 'pg';
import { type NodeLabel, PoolClosedError } from '../errors/index.js';
import type { Clock, ClockTimer } from './clock.js';
import { destroySocket, type PooledConnection } from './connection.js';
import type { ConnectionSet } from './connections.js';
import type { Dispatcher } from './dispatcher.js';

/** An acquire() of pgpulse's own, waiting for a connection to go idle. */
interface SpareWait {
  readonly resolve: (lease: PooledConnection | undefined) => void;
  readonly timer: ClockTimer;
}

/**
 * Connections for pgpulse's own background work on one node (a slow statement's EXPLAIN),
 * which must not change the pool's size or figures (pg.Pool's `totalCount`, `onConnect`
 * calls): an idle one that no statement is waiting for, now or as soon as one goes idle
 * within the wait; else a connection of its own outside the pool (same settings, no set-up
 * hook), closed on release. It never queues ahead of the application.
 */
export class BackgroundLeases {
  readonly #waits: SpareWait[] = [];

  constructor(
    private readonly label: NodeLabel,
    private readonly dispatcher: Dispatcher,
    private readonly conns: ConnectionSet,
    private readonly clock: Clock,
  ) {}

  /** A connection within `waitMs`, or one outside the pool; `ending` says the pool closed. */
  async acquire(waitMs: number, ending: () => boolean): Promise<PooledConnection> {
    const spare = this.dispatcher.takeSpare() ?? (await this.waitForSpare(waitMs));
    if (spare !== undefined) return this.conns.binary ? textResults(spare) : spare;
    if (ending()) throw new PoolClosedError(this.label);
    const client = await this.conns.openOutside();
    let released = false;
    return {
      client,
      reused: false,
      release: () => {
        if (released) return;
        released = true;
        client.end().catch(() => destroySocket(client));
      },
    };
  }

  /** A connection went idle: the background work waiting may have it now. */
  serve(): void {
    while (this.#waits.length > 0) {
      const lease = this.dispatcher.takeSpare();
      if (lease === undefined) return;
      const wait = this.#waits.shift()!;
      wait.timer.cancel();
      wait.resolve(lease);
    }
  }

  /** The pool is ending: every wait gives up (and opens no connection of its own). */
  cancelWaits(): void {
    for (const wait of this.#waits.splice(0)) {
      wait.timer.cancel();
      wait.resolve(undefined);
    }
  }

  private waitForSpare(waitMs: number): Promise<PooledConnection | undefined> {
    if (waitMs <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const wait: SpareWait = {
        resolve,
        // Not keeping the process alive: a script that is done exits without its EXPLAIN.
        timer: this.clock.schedule(
          waitMs,
          () => {
            const at = this.#waits.indexOf(wait);
            if (at >= 0) this.#waits.splice(at, 1);
            resolve(undefined);
          },
          false,
        ),
      };
      this.#waits.push(wait);
    });
  }
}

/** pg.Client's result-format flag, which @types/pg does not declare. */
interface BinaryFlag {
  binary?: boolean;
}

/**
 * A binary pool's connection lent to pgpulse's own work, whose statements (EXPLAIN with the
 * slow statement's parameters) must read text: pg copies the client's `binary` onto every
 * statement as it is queued, and a statement's own `binary: false` does not override it, so
 * the flag is off for the lease (nobody else queues on the connection meanwhile).
 */
function textResults(lease: PooledConnection): PooledConnection {
  const client = lease.client as pg.Client & BinaryFlag;
  client.binary = false;
  return {
    client: lease.client,
    ...(lease.reused === undefined ? {} : { reused: lease.reused }),
    ...(lease.broken ? { broken: () => lease.broken?.() === true } : {}),
    ...(lease.reportedSettingsChanged
      ? { reportedSettingsChanged: () => lease.reportedSettingsChanged?.() === true }
      : {}),
    release: (destroy) => {
      client.binary = true;
      lease.release(destroy);
    },
  };
}
