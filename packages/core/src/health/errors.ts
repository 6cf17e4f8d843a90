import { PoolTimeoutError } from '../errors/index.js';

/**
 * Node errno codes that mean "could not reach the server / the connection broke". These come
 * from `net`/`tls`/`dns` sockets under pg and are never produced by a statement's own logic.
 */
const NETWORK_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ERR_SOCKET_CLOSED',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
]);

/**
 * SQLSTATEs outside class 08 that mean the server cannot serve anyone right now:
 * admin_shutdown, crash_shutdown, cannot_connect_now (starting up / shutting down / recovery
 * not yet consistent), too_many_connections.
 *
 * Deliberately absent: 57014 query_canceled (statement_timeout or a user cancel), 57P04
 * database_dropped and 57P05 idle_session_timeout (the server is fine, this session is not),
 * 40001/40P01 (retry the transaction, not the node), 25006 (see isReadOnlyError), 28xxx/3D000
 * (wrong credentials or database: configuration, which the breaker cannot fix by waiting).
 */
const AVAILABILITY_SQLSTATE = new Set(['57P01', '57P02', '57P03', '53300']);

/**
 * Messages pg and pg-pool use for connection-level failures; they carry no `code`.
 *
 * 'timeout exceeded when trying to connect' is deliberately not here: pg-pool raises it when
 * its own pool is full and the wait for a free client expires. That is local pool exhaustion
 * (like PoolTimeoutError), and counting it would open the breaker of a healthy node under load.
 */
const CONNECTION_MESSAGES = new Set([
  'Connection terminated',
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout expired',
  'Client has encountered a connection error and is not queryable',
  'Client network socket disconnected before secure TLS connection was established',
]);

const SQLSTATE = /^[0-9A-Z]{5}$/;
const MAX_CAUSE_DEPTH = 8;

/**
 * True for errors that mean the node is unavailable: they count toward its circuit breaker,
 * and a read that failed with one may be retried on another node. Never true for an error in
 * the user's SQL, which would fail the same way on any node.
 */
export function isAvailabilityError(err: unknown): boolean {
  return walk(err, new Set(), 0, isAvailabilityLeaf);
}

/**
 * True for 25006 read_only_sql_transaction ("cannot execute INSERT in a read-only
 * transaction"): a write reached a node that is (now) a standby, which is how a demoted
 * primary shows itself after a failover. The node is up, so this is not an availability error.
 */
export function isReadOnlyError(err: unknown): boolean {
  return walk(err, new Set(), 0, (e) => codeOf(e) === '25006');
}

function walk(
  err: unknown,
  seen: Set<unknown>,
  depth: number,
  leaf: (err: object) => boolean,
): boolean {
  if (typeof err !== 'object' || err === null || seen.has(err) || depth > MAX_CAUSE_DEPTH) {
    return false;
  }
  seen.add(err);
  // Pool exhaustion is local to this process even if it wraps a cause that looks like a node
  // failure; the node itself may be perfectly healthy.
  if (err instanceof PoolTimeoutError) return false;
  if (leaf(err)) return true;
  // A code that is a SQLSTATE is the server's verdict; do not second-guess it through causes.
  const code = codeOf(err);
  if (code !== undefined && SQLSTATE.test(code) && !NETWORK_ERRNO.has(code)) return false;
  // Node's happy-eyeballs connect (autoSelectFamily) reports one AggregateError for all
  // addresses it tried; pg-pool wraps a connect timeout with { cause }.
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      if (walk(inner, seen, depth + 1, leaf)) return true;
    }
  }
  return 'cause' in err && walk(err.cause, seen, depth + 1, leaf);
}

function isAvailabilityLeaf(err: object): boolean {
  const code = codeOf(err);
  if (code !== undefined) {
    if (NETWORK_ERRNO.has(code)) return true;
    // A missing unix socket surfaces as ENOENT from connect(); ENOENT elsewhere is a file error.
    if (code === 'ENOENT' || code === 'EACCES') return syscallOf(err) === 'connect';
    if (SQLSTATE.test(code)) return code.startsWith('08') || AVAILABILITY_SQLSTATE.has(code);
  }
  // Only code-less errors are judged by message: a server error (with a SQLSTATE) whose text
  // happens to read "Connection terminated", e.g. a user RAISE, must not trip the breaker.
  const message = messageOf(err);
  return message !== undefined && CONNECTION_MESSAGES.has(message);
}

function codeOf(err: object): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function syscallOf(err: object): string | undefined {
  const syscall = (err as { syscall?: unknown }).syscall;
  return typeof syscall === 'string' ? syscall : undefined;
}

function messageOf(err: object): string | undefined {
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' ? message : undefined;
}
