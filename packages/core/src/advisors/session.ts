import { IndexSessionError } from '../errors/index.js';
import { type MaintenanceSession, maintenanceSession } from '../maintenance/index.js';
import type { QueryClient } from '../sql/index.js';
import { asRow, bool, ddlFailure, num, str } from './sql.js';

/**
 * One database session for index DDL. CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY must
 * run outside a transaction block, and a session-level advisory lock must be taken, used and
 * released on the same connection, so a pool is never used statement by statement: a
 * connection is checked out for the whole job. The session itself (locks, timeouts, taint) is
 * maintenance/'s, shared with partition maintenance; this file finds the connection and checks
 * it (one backend, the primary, outside a transaction block).
 */

interface PoolLike {
  connect(): Promise<unknown>;
  readonly totalCount: number;
}

interface Checkout extends QueryClient {
  release(destroy?: boolean): void;
}

function isPoolLike(client: QueryClient): client is QueryClient & PoolLike {
  const c = client as unknown as Partial<PoolLike>;
  return typeof c.connect === 'function' && typeof c.totalCount === 'number';
}

function isCheckout(value: unknown): value is Checkout {
  const c = value as Partial<Checkout> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.query === 'function' &&
    typeof c.release === 'function'
  );
}

/** The session index DDL runs in; its `check` holds the backend pid every lock confirms. */
export type Session = MaintenanceSession;

function otherBackend(): IndexSessionError {
  return new IndexSessionError(
    'PGPULSE_INDEX_SESSION',
    'The advisory lock was taken on another connection than the session checked: pass one ' +
      'connection (a pg.Client or a PoolClient) for index maintenance.',
  );
}

/**
 * Runs `body` on one connection: `client` itself, or a connection checked out of it when it is
 * a pool (pg.Pool and compatible). Refuses a connection inside a transaction block or on a
 * server in recovery, with an error that says what to pass instead.
 */
export async function withSession<T>(
  client: QueryClient,
  body: (session: Session) => Promise<T>,
  options: { readonly requireOutsideTransaction: boolean },
): Promise<T> {
  let checkout: Checkout | undefined;
  let session: Session | undefined;
  let connection: QueryClient = client;
  if (isPoolLike(client)) {
    const acquired = await client.connect();
    if (!isCheckout(acquired)) {
      throw new IndexSessionError(
        'PGPULSE_INDEX_SESSION',
        'The pool returned a connection without query() and release(): pass one connection ' +
          '(a pg.Client or a PoolClient) on the primary instead.',
      );
    }
    checkout = acquired;
    connection = acquired;
  }
  try {
    const pid = await inspect(connection, options.requireOutsideTransaction);
    session = maintenanceSession(connection, { pid, otherBackend });
    return await body(session);
  } finally {
    checkout?.release(session?.tainted === true ? true : undefined);
  }
}

/**
 * Checks the session. "In a transaction block" is detected with two statements: outside one,
 * each statement is its own transaction and now() moves; inside one, now() stays the
 * transaction's start time. (Comparing now() with statement_timestamp() is not reliable: the
 * extended query protocol gives them different values even outside a transaction.)
 */
async function inspect(client: QueryClient, requireOutsideTransaction: boolean): Promise<number> {
  let first: ReturnType<typeof asRow>;
  let second: ReturnType<typeof asRow>;
  try {
    const a = await client.query(
      `SELECT pg_catalog.now()::text AS now, pg_catalog.pg_backend_pid() AS pid,
              pg_catalog.pg_is_in_recovery() AS recovery`,
    );
    first = asRow(a.rows[0]);
    const b = await client.query(
      'SELECT pg_catalog.now()::text AS now, pg_catalog.pg_backend_pid() AS pid',
    );
    second = asRow(b.rows[0]);
  } catch (error) {
    throw ddlFailure('Checking the session for index maintenance', error);
  }
  const pid = num(first.pid);
  if (pid === undefined || num(second.pid) !== pid) {
    throw new IndexSessionError(
      'PGPULSE_INDEX_SESSION',
      'Index maintenance needs one database session, and consecutive statements on this ' +
        'client ran on different connections. Pass a pg.Client, a checked-out PoolClient or a ' +
        'pg.Pool (a connection is then checked out), connected to the primary.',
    );
  }
  if (bool(first.recovery)) {
    throw new IndexSessionError(
      'PGPULSE_INDEX_READ_ONLY',
      'This connection is to a server in recovery (a replica): indexes are built on the ' +
        'primary, and replicas receive them through replication. Pass a primary connection.',
    );
  }
  if (requireOutsideTransaction && str(first.now) === str(second.now)) {
    throw new IndexSessionError(
      'PGPULSE_INDEX_IN_TRANSACTION',
      'CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY cannot run inside a transaction ' +
        'block, and this connection is in one. COMMIT or ROLLBACK first, or pass a connection ' +
        'with no open transaction.',
    );
  }
  return pid;
}
