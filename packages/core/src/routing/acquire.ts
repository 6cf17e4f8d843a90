import { PrimaryUnavailableError } from '../errors/index.js';
import { isAvailabilityError } from '../health/index.js';
import type { PooledConnection } from '../pool/index.js';
import type { ClusterNode } from '../topology/index.js';
import { untraced } from '../tracing/index.js';
import type { Classification } from './classification.js';
import type { Placement } from './placement.js';

/**
 * Acquires a connection on the placement's node, counting failures toward its breaker. A write
 * whose connection could not even be opened was certainly not sent, which the error says. The
 * connection itself when an idle one was ready (no promise, no tick).
 */
export function acquire(
  placement: Placement,
  cls: Classification,
): PooledConnection | Promise<PooledConnection> {
  let got: PooledConnection | Promise<PooledConnection>;
  try {
    // A connect or pre-ping is pgpulse's round trip, not the user's statement.
    got = untraced(acquireNow, placement.node);
  } catch (err) {
    return Promise.reject(acquireFailed(placement, cls, err));
  }
  if (!(got instanceof Promise)) {
    if (cls.kind !== 'write' || got.reused !== true || got.broken === undefined) return got;
    got = Promise.resolve(got);
  }
  return got
    .then((connection) => (cls.kind === 'write' ? unlessHungUp(placement, connection) : connection))
    .catch((err: unknown) => {
      throw acquireFailed(placement, cls, err);
    });
}

function acquireNow(node: ClusterNode): PooledConnection | Promise<PooledConnection> {
  return node.pool.acquireNow();
}

/** Counts a statement's or connect's failure toward the node's figures and its breaker. */
export function recordOutcome(node: ClusterNode, err: unknown): void {
  node.counters.errors++;
  if (isAvailabilityError(err)) {
    node.counters.availabilityErrors++;
    node.breaker.recordFailure();
  } else {
    // The server answered, so the node is up even though the statement failed.
    node.breaker.recordSuccess();
  }
}

/** What a failed acquire throws, once counted toward the node's breaker. */
function acquireFailed(placement: Placement, cls: Classification, err: unknown): unknown {
  recordOutcome(placement.node, err);
  if (cls.kind === 'write' && placement.node.role === 'primary' && isAvailabilityError(err)) {
    return new PrimaryUnavailableError(
      `could not connect to primary "${placement.node.name}" (${placement.node.host}:${placement.node.port})`,
      { cause: err },
    );
  }
  return err;
}

/**
 * A write, once sent, is never retried (it may have run), so it must not be sent on a
 * connection whose server already hung up. When a node dies, its goodbye (FATAL, then EOF)
 * waits in the socket until pg reads it on the next turn of the event loop; an idle connection
 * handed out before that turn looks alive. One poll of the sockets lets pg read it: a
 * connection found broken is discarded and a new one opened, whose failure is a
 * PrimaryUnavailableError that failover.writeWaitMs waits out. New connections just did their
 * I/O and skip the turn.
 */
async function unlessHungUp(
  placement: Placement,
  connection: PooledConnection,
): Promise<PooledConnection> {
  if (connection.reused !== true || connection.broken === undefined) return connection;
  await pollTurn();
  if (!connection.broken()) return connection;
  connection.release(true);
  return untraced(() => placement.node.pool.acquire());
}

/**
 * Resolves after libuv has polled the sockets at least once. One setImmediate is not enough:
 * called from an I/O callback, it runs in this very loop iteration's check phase, before the
 * next poll; the second runs only after that poll.
 */
function pollTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
