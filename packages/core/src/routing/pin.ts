import type { EventEmitter } from 'node:events';
import type pg from 'pg';
import { type PooledConnection, transactionStatus } from '../pool/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { Classification } from './classification.js';
import type { QueryRequest } from './query-args.js';

/**
 * One real connection a checked-out client holds on to (invariant 2): for a transaction,
 * session state, or a cursor or stream, until that ends or the client is released.
 */
export interface Pin {
  readonly node: ClusterNode;
  readonly connection: PooledConnection;
  /** Session state changed (SET, LISTEN, temp table, advisory lock...): never reuse it. */
  dirty: boolean;
  /** Kept until release (nextval: currval must answer from the same session), then reused. */
  held: boolean;
  /** A cursor or stream is reading from it. */
  streaming: boolean;
  /**
   * On a replica: the statements that changed its session (SET inside BEGIN READ ONLY), to
   * run again on the primary when a write follows; undefined once something not replayable
   * (a lock, a cursor WITH HOLD, ...) happened there.
   */
  replay: QueryRequest[] | undefined;
  /** Watches the running stream's end. */
  onDrain?: () => void;
  /** Stops forwarding the connection's events to the client. */
  readonly detach: () => void;
}

/**
 * Pins `connection` for a client: its notifications, notices, errors and end are forwarded to
 * `face`, as a pg.Client's own would be.
 */
export function openPin(node: ClusterNode, connection: PooledConnection, face: EventEmitter): Pin {
  const client = connection.client;
  const onNotification = (msg: pg.Notification) => face.emit('notification', msg);
  const onNotice = (msg: unknown) => face.emit('notice', msg);
  // The server ended this session (idle_in_transaction_session_timeout, a terminate, a
  // crash): tell the client's user as a pg client would, so an ORM releases it and reports
  // its own error. Only to a listener of theirs (the constructor's own is one): pg would
  // crash the process here, which no one wants from a connection pgpulse chose.
  const onError = (err: Error) => {
    if (face.listenerCount('error') > 1) face.emit('error', err);
  };
  const onEnd = () => face.emit('end');
  client.on('notification', onNotification);
  client.on('notice', onNotice);
  client.on('error', onError);
  client.on('end', onEnd);
  return {
    node,
    connection,
    dirty: false,
    held: false,
    streaming: false,
    replay: node.role === 'primary' ? undefined : [],
    detach: () => {
      client.off('notification', onNotification);
      client.off('notice', onNotice);
      client.off('error', onError);
      client.off('end', onEnd);
    },
  };
}

/** Gives a pinned connection back: destroyed when its session may carry state. */
export function closePin(pin: Pin, destroy: boolean): void {
  pin.detach();
  if (pin.onDrain) pin.connection.client.off('drain', pin.onDrain);
  const dirty = destroy || pin.dirty || transactionStatus(pin.connection.client) !== 'I';
  pin.connection.release(dirty);
}

/** BEGIN READ ONLY may run on a replica; every other pinning statement needs the primary. */
export function pinClassification(cls: Classification): Classification {
  if (cls.transaction === 'begin-read-only') return { ...cls, kind: 'read' };
  return cls.kind === 'write' ? cls : { ...cls, kind: 'write' };
}

/** Statements a replica connection cannot run (BEGIN READ ONLY can). */
export function needsPrimary(cls: Classification): boolean {
  return cls.kind === 'write' && cls.transaction !== 'begin-read-only';
}

/**
 * Runs a replica session's replayable statements on `connection` (a primary's), so that a
 * write moved there runs with them; on failure the connection is destroyed.
 */
export async function replayOn(
  connection: PooledConnection,
  replay: readonly QueryRequest[],
): Promise<void> {
  try {
    for (const request of replay) {
      await (request.plain
        ? connection.client.query(request.text, request.config.values)
        : connection.client.query(request.config));
    }
  } catch (err) {
    connection.release(true);
    throw err;
  }
}
