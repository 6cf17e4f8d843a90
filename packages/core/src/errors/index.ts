/**
 * Typed errors pgpulse raises. Each says what happened and how to fix it, and none carries a
 * password: node descriptions are built from `NodeLabel`, never from a connection string.
 */

import { describeNode, type NodeLabel } from './node-label.js';
import { PgPulseError } from './pgpulse-error.js';

export {
  ConnectTimeoutError,
  type ConnectTimeoutPhase,
  PoolClosedError,
  type PoolFigures,
  PoolTimeoutError,
  ProbeTimeoutError,
} from './connections.js';
export { describeNode, type NodeLabel, type NodeRole } from './node-label.js';
export { PgPulseError };

/** One problem in a configuration: the dotted path of the field and what is wrong with it. */
export interface ConfigIssue {
  /** Dotted path of the offending field, e.g. `replicas.1.weight`. */
  readonly field: string;
  readonly message: string;
}

/** Thrown at start-up for a configuration that cannot work. */
export class ConfigError extends PgPulseError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const lines = issues.map((i) => `  - ${i.field || '(root)'}: ${i.message}`).join('\n');
    super('PGPULSE_CONFIG', `Invalid pgpulse configuration:\n${lines}`);
    this.issues = issues;
  }
}

/** A read needed a replica (policy `error`) and none was eligible. */
export class NoHealthyReplicaError extends PgPulseError {
  readonly reasons: Readonly<Record<string, string>>;

  constructor(reasons: Readonly<Record<string, string>>) {
    const detail = Object.entries(reasons)
      .map(([name, why]) => `${name}: ${why}`)
      .join('; ');
    super(
      'PGPULSE_NO_HEALTHY_REPLICA',
      `No replica can serve this read (${detail || 'no replicas configured'}). ` +
        "Use replicaLag.policy 'fallback' to read from the primary instead.",
      { retriable: true },
    );
    this.reasons = reasons;
  }
}

/** Writes cannot be served: the primary is down or a failover is in progress. */
export class PrimaryUnavailableError extends PgPulseError {
  /** Why no primary can take the statement, without the advice around it. */
  readonly reason: string;

  constructor(reason: string, options?: { cause?: unknown }) {
    super(
      'PGPULSE_PRIMARY_UNAVAILABLE',
      `No primary can accept writes: ${reason}. The write was not sent; retry it once a ` +
        'primary is elected (listen for the failover events).',
      { retriable: true, cause: options?.cause },
    );
    this.reason = reason;
  }
}

/**
 * A transaction statement sent through `pool.query()`, where each statement may run on another
 * connection: `BEGIN` there would open a transaction nobody continues (pg.Pool silently lets
 * the next UPDATE autocommit and the ROLLBACK undo nothing). Also raised when a statement left
 * a transaction open on a one-off connection: that connection is closed, which rolls it back.
 */
export class TransactionOnPoolError extends PgPulseError {
  constructor(what: string) {
    super(
      'PGPULSE_TRANSACTION_ON_POOL',
      `${what} through pool.query(), where every statement may run on a different connection. ` +
        'Run transactions on one client: `const c = await pool.connect(); await ' +
        "c.query('BEGIN'); ...; await c.query('COMMIT'); c.release()` (or your ORM's " +
        'transaction API), or send the whole transaction as one text ending in COMMIT.',
    );
  }
}

/**
 * A session setting changed through `pool.query()`: it would reach the one connection that
 * statement ran on (which pgpulse then closes rather than hand its state to another borrower),
 * and no later statement. pg.Pool drops it as silently, on a connection chosen by chance.
 */
export class SessionOnPoolError extends PgPulseError {
  constructor(what: string) {
    super(
      'PGPULSE_SESSION_ON_POOL',
      `${what} through pool.query() changes one connection only, and the next statement may run ` +
        "on any other. For every connection, use the 'settings' option (createCluster({ " +
        "settings: { statement_timeout: '5s' } }), per node too, or `?options=-c%20name%3Dvalue` " +
        'in the URL); for one unit of work, run it on a client from pool.connect() (SET LOCAL ' +
        'inside a transaction), or send it in the same text as the statements it is for.',
    );
  }
}

/**
 * A statement that changes session state (SET without LOCAL, LISTEN, a session advisory lock,
 * a temp table, SQL PREPARE, DECLARE ... WITH HOLD) outside a transaction, on a cluster whose
 * nodes sit behind a transaction-mode pooler (`pooler: 'transaction'`): the pooler hands the
 * server connection to another client after the statement, so the state would leak to it and
 * be missing for this one. Refused before it is sent.
 */
export class SessionBehindPoolerError extends PgPulseError {
  constructor(what: string) {
    super(
      'PGPULSE_SESSION_BEHIND_POOLER',
      `${what} outside a transaction, but the node is behind a transaction-mode pooler ` +
        "(pooler: 'transaction'): after this statement the pooler may give its server " +
        'connection to another client, so the session state would leak there and be lost ' +
        'here. Use SET LOCAL (or set_config(..., true)) inside a transaction; run the ' +
        'statement inside a transaction (cluster.transaction(), or BEGIN on a client from ' +
        'pool.connect()) with transaction-scoped locks (pg_advisory_xact_lock) and ON COMMIT ' +
        'DROP temp tables; or connect directly to PostgreSQL (or a session-mode pool) for ' +
        'LISTEN and other session state.',
    );
  }
}

/**
 * A consistency token that is not one pgpulse made (`withConsistencyToken`, or the header
 * `cluster.middleware()` reads, which treats it as absent instead).
 */
export class BadTokenError extends PgPulseError {
  constructor(why: string) {
    super(
      'PGPULSE_BAD_TOKEN',
      `Not a pgpulse consistency token: ${why}. Pass the string cluster.consistencyToken() ` +
        'returned (e.g. "pgpulse:2:0/16B3748:0/16B3748"), or "" for none.',
    );
  }
}

/**
 * A read in a context whose write is not confirmed as replayed anywhere, while no primary is
 * up: a replica might not have that write yet, so the read would be stale and is refused.
 */
export class ReadNeedsPrimaryError extends PgPulseError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(
      'PGPULSE_READ_NEEDS_PRIMARY',
      `This read needs the primary: its context wrote (or read) data that no replica is known ` +
        `to have yet, but ${reason}. The read was not sent. Retry once a primary is elected; or ` +
        'set consistency.waitMs so reads wait for a replica to replay the write; or read stale ' +
        "on purpose with cluster.withConsistency('eventual', fn) (or cluster.replica(fn)).",
      { retriable: true, cause: options?.cause },
    );
  }
}

/**
 * More than one node accepts writes on the newest timeline: two promotions happened (two app
 * instances each promoted a standby, or an HA system and pgpulse both did). pgpulse stops
 * sending writes to either rather than pick one silently; it resumes by itself once exactly one
 * of them is writable. A PrimaryUnavailableError, so retry logic that handles an outage handles
 * this too.
 */
export class SplitBrainError extends PrimaryUnavailableError {
  override readonly code = 'PGPULSE_SPLIT_BRAIN';
  /** The nodes that accept writes. */
  readonly nodes: readonly NodeLabel[];
  /** What an operator does about it. */
  readonly fix: string;

  constructor(nodes: readonly NodeLabel[]) {
    const fix =
      'Keep the node with the writes you want, stop the other (pg_ctl stop) and rebuild it as a ' +
      'standby of the kept one (pg_rewind or a new base backup). To prevent it with several app ' +
      "instances, use failover.promotion 'external' with an HA manager (Patroni), or set " +
      'failover.coordinator so that one instance holds the promotion lease';
    super(
      `split brain: ${nodes.map(describeNode).join(' and ')} all accept writes on the same ` +
        `timeline, so pgpulse stopped writing to any of them. ${fix}`,
    );
    this.nodes = Object.freeze(
      nodes.map((n) => Object.freeze({ name: n.name, role: n.role, host: n.host, port: n.port })),
    );
    this.fix = fix;
  }
}

/**
 * The failover coordinator (`failover.coordinator`, e.g. etcd) could not be reached or did not
 * answer in time. pgpulse promotes nothing without the lease; it follows a promotion that
 * another instance (or an HA system) makes, and tries again at the next probe round.
 */
export class CoordinatorUnavailableError extends PgPulseError {
  readonly fix: string;

  constructor(what: string, options?: { cause?: unknown }) {
    const fix =
      'Check that the coordinator endpoints in failover.coordinator are right and that the ' +
      'service is up and reachable from every app instance';
    super('PGPULSE_COORDINATOR_UNAVAILABLE', `${what}; no promotion was made. ${fix}.`, {
      retriable: true,
      cause: options?.cause,
    });
    this.fix = fix;
  }
}

/** The cluster was closed; no further statements are accepted. */
/** A statement passed pool.statementTimeoutMs; its connection was closed (the server rolls back). */
export class StatementTimeoutError extends PgPulseError {
  readonly timeoutMs: number;

  constructor(node: NodeLabel, timeoutMs: number, options?: { cause?: unknown }) {
    super(
      'PGPULSE_STATEMENT_TIMEOUT',
      `A statement on ${describeNode(node)} passed its ${timeoutMs} ms deadline ` +
        '(pool.statementTimeoutMs); its connection was closed, so the server rolled back what ' +
        'it had not committed. A write may have been committed just before: retry only when ' +
        'it is safe to run twice, or raise the deadline.',
      { ...options, retriable: true },
    );
    this.timeoutMs = timeoutMs;
  }
}

/** A statement or call on a cluster after `close()`; create a new cluster. */
export class ClusterClosedError extends PgPulseError {
  constructor(options?: { cause?: unknown }) {
    super('PGPULSE_CLOSED', 'The pgpulse cluster has been closed; create a new one.', options);
  }
}

/** Why a connection to a node failed, as far as the error tells. */
export type ConnectFailure =
  | 'auth-failed'
  | 'unknown-database'
  | 'dns'
  | 'refused'
  | 'timeout'
  | 'unavailable';

const CONNECT_FAILURE_BY_CODE: Readonly<Record<string, ConnectFailure>> = {
  '28P01': 'auth-failed',
  '28000': 'auth-failed',
  '3D000': 'unknown-database',
  ENOTFOUND: 'dns',
  EAI_NONAME: 'dns',
  ECONNREFUSED: 'refused',
  ETIMEDOUT: 'timeout',
  ERR_SOCKET_CONNECTION_TIMEOUT: 'timeout',
};

const CONNECT_FIX: Readonly<Record<ConnectFailure, string>> = {
  'auth-failed':
    'Check the user and password of this node, and that pg_hba.conf admits this user from this host.',
  'unknown-database': 'The database does not exist on that server: check its name.',
  dns: 'The host name does not resolve: check its spelling and DNS.',
  refused: 'Nothing listens there: check host and port, and that PostgreSQL is running.',
  timeout: 'No answer in time: check that the node is up and reachable (firewalls, routes).',
  unavailable: 'The server could not take the connection; it may be starting or overloaded.',
};

/**
 * What an error along a connect failure's cause chain says: the SQLSTATE or system code that
 * names it, looked up through `cause` and AggregateError (happy-eyeballs connects).
 */
export function connectFailureOf(err: unknown, depth = 0): ConnectFailure | undefined {
  if (typeof err !== 'object' || err === null || depth > 8) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECT_FAILURE_BY_CODE[code])
    return CONNECT_FAILURE_BY_CODE[code];
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const found = connectFailureOf(inner, depth + 1);
      if (found) return found;
    }
  }
  return 'cause' in err
    ? connectFailureOf((err as { cause?: unknown }).cause, depth + 1)
    : undefined;
}

/**
 * Failures that waiting will not fix: wrong credentials, a missing database, a host name that
 * does not resolve. A refused or silent node may come back; these need a configuration change.
 */
export function isDefinitiveConnectFailure(failure: ConnectFailure | undefined): boolean {
  return failure === 'auth-failed' || failure === 'unknown-database' || failure === 'dns';
}

/**
 * A connection to a node could not be opened: on the query path (the statement was not sent)
 * or in `ready()`. `failure` names why; `cause` is the driver's or the system's own error.
 */
export class NodeConnectionError extends PgPulseError {
  readonly node: NodeLabel;
  readonly failure: ConnectFailure;

  constructor(node: NodeLabel, cause: unknown) {
    const failure = connectFailureOf(cause) ?? 'unavailable';
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(
      'PGPULSE_NODE_CONNECTION',
      `Could not connect to ${describeNode(node)} (${failure}): ${detail}. ${CONNECT_FIX[failure]}`,
      { cause, retriable: !isDefinitiveConnectFailure(failure) },
    );
    // A copy: the label handed in may be a richer object.
    this.node = Object.freeze({
      name: node.name,
      role: node.role,
      host: node.host,
      port: node.port,
    });
    this.failure = failure;
  }
}
/**
 * pgpulse's account of a failed connect, attached as `err.pgpulse` to the driver's own error
 * that `cluster.pool` passes on (see surfaceDriverError): what NodeConnectionError would say.
 */
export interface ConnectionFailureContext {
  readonly code: 'PGPULSE_NODE_CONNECTION';
  readonly node: NodeLabel;
  readonly failure: ConnectFailure;
  readonly retriable: boolean;
  /** NodeConnectionError's message: the node, why, and what to do. */
  readonly message: string;
}

/** The context `cluster.pool` attached to a driver's connection error, if any. */
export function connectionFailureOf(err: unknown): ConnectionFailureContext | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const context = (err as { pgpulse?: unknown }).pgpulse as ConnectionFailureContext | undefined;
  return context?.code === 'PGPULSE_NODE_CONNECTION' ? context : undefined;
}

/**
 * At `cluster.pool`'s boundary: a failed connect to the one node a statement or checkout
 * needed is given as the driver's own error (its `code`, `errno`, `syscall`, `severity`, which
 * ORMs map: @prisma/adapter-pg turns ECONNREFUSED into "database not reachable" and 28P01 into
 * "authentication failed"), with `pgpulse` (ConnectionFailureContext) attached. Every other
 * error is returned as it is.
 */
export function surfaceDriverError(err: unknown): unknown {
  if (!(err instanceof NodeConnectionError) || !(err.cause instanceof Error)) return err;
  const cause = err.cause;
  if (connectionFailureOf(cause) === undefined) {
    const context: ConnectionFailureContext = Object.freeze({
      code: 'PGPULSE_NODE_CONNECTION',
      node: err.node,
      failure: err.failure,
      retriable: err.retriable,
      message: err.message,
    });
    Object.defineProperty(cause, 'pgpulse', {
      value: context,
      enumerable: true,
      configurable: true,
    });
  }
  return cause;
}

export {
  ExplainError,
  IndexMaintenanceError,
  IndexSessionError,
  LockRetriesExhaustedError,
  PartitioningError,
  type PartitioningErrorKind,
} from './maintenance.js';
