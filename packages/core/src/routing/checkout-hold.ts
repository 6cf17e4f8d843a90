import type { EventEmitter } from 'node:events';
import type { PoolingMode } from '../config/index.js';
import { PrimaryUnavailableError } from '../errors/index.js';
import { isAvailabilityError } from '../health/index.js';
import type { PooledConnection } from '../pool/index.js';
import type { ClusterNode } from '../topology/index.js';
import { recordOutcome } from './acquire.js';
import type { Router } from './router.js';

/** The connection a pool.connect() checkout holds, and the node it is on. */
export interface CheckoutHold {
  readonly node: ClusterNode;
  readonly lease: PooledConnection;
}

/**
 * The connection behind a checkout: a primary connection. With the primary down (a failover
 * under way), a replica's connection holds the checkout instead, so that a client can still
 * read; it fails only when no node can be reached, as pg.Pool's connect() fails against a dead
 * server. Session pooling needs the primary for the whole checkout. `placed` is called once
 * the node is decided.
 */
export async function holdForCheckout(
  router: Router,
  poolingMode: PoolingMode,
  placed: () => void,
): Promise<CheckoutHold> {
  let primaryError: unknown;
  try {
    const node = router.writeNode();
    placed();
    try {
      // The pool's own error (refused, timed out, full), as pg.Pool's connect() gives it: no
      // statement was at stake, so there is no "write was not sent" to say.
      return { node, lease: await node.pool.acquire() };
    } catch (err) {
      recordOutcome(node, err);
      throw err;
    }
  } catch (err) {
    primaryError = err;
  }
  const unavailable =
    primaryError instanceof PrimaryUnavailableError || isAvailabilityError(primaryError);
  if (poolingMode === 'session' || !unavailable) throw primaryError;
  // Only a connection to hold: the client's first statement is routed on its own merits,
  // so any replica that is up will do, whatever its lag.
  for (const node of router.nodes) {
    if (node.role !== 'replica' || !node.health.up) continue;
    try {
      return { node, lease: await node.pool.acquire() };
    } catch (err) {
      recordOutcome(node, err);
    }
  }
  throw primaryError;
}

/**
 * A checkout's connection, held until the client's first statement. Its 'error' (the server
 * ended the session, someone ended its socket) reaches the client's own listeners, as on a
 * pg client; the pool drops the connection when it comes back.
 */
export class HeldConnection {
  readonly #onError: (err: Error) => void;

  constructor(
    readonly lease: PooledConnection,
    face: EventEmitter,
  ) {
    // The client's constructor listens itself: forward only to a listener of its user's.
    this.#onError = (err: Error) => {
      if (face.listenerCount('error') > 1) face.emit('error', err);
    };
    lease.client.on('error', this.#onError);
  }

  /** Gives the connection back to its node's pool (destroyed when `destroy`). */
  release(destroy: boolean): void {
    this.lease.client.off('error', this.#onError);
    this.lease.release(destroy);
  }
}
