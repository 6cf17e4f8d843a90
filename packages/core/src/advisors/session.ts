import { IndexSessionError } from '../errors/index.js';
import type { QueryClient } from '../sql/index.js';
import { asRow, bool, ddlFailure, num, str } from './sql.js';

/**
 * One database session for index DDL. CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY must
 * run outside a transaction block, and a session-level advisory lock must be taken, used and
 * released on the same connection, so a pool is never used statement by statement: a
 * connection is checked out for the whole job.
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

export interface Session {
  readonly client: QueryClient;
  /** pg_backend_pid() of the session, checked again around every lock. */
  readonly pid: number;
  /** Marks the connection as unusable: a checked-out one is destroyed, not returned. */
  taint(): void;
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
  let tainted = false;
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
    return await body({
      client: connection,
      pid,
      taint: () => {
        tainted = true;
      },
    });
  } finally {
    checkout?.release(tainted ? true : undefined);
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

/** pg_try_advisory_lock on the session; also confirms the statement ran on that session. */
export async function tryAdvisoryLock(session: Session, key: bigint): Promise<boolean> {
  const result = await session.client.query(
    'SELECT pg_catalog.pg_try_advisory_lock($1::int8) AS locked, pg_catalog.pg_backend_pid() AS pid',
    [key.toString()],
  );
  const r = asRow(result.rows[0]);
  const locked = bool(r.locked);
  if (num(r.pid) !== session.pid) {
    session.taint();
    throw new IndexSessionError(
      'PGPULSE_INDEX_SESSION',
      'The advisory lock was taken on another connection than the session checked: pass one ' +
        'connection (a pg.Client or a PoolClient) for index maintenance.',
    );
  }
  return locked;
}

export async function advisoryUnlock(session: Session, key: bigint): Promise<void> {
  await session.client.query('SELECT pg_catalog.pg_advisory_unlock($1::int8) AS unlocked', [
    key.toString(),
  ]);
}

export interface Timeouts {
  readonly lockTimeoutMs?: number | undefined;
  readonly statementTimeoutMs?: number | undefined;
}

/**
 * Sets lock_timeout / statement_timeout for the session while `body` runs (SET LOCAL is not
 * available outside a transaction block) and puts the previous values back afterwards.
 */
export async function withTimeouts<T>(
  session: Session,
  timeouts: Timeouts,
  body: () => Promise<T>,
): Promise<T> {
  const wanted: [string, number][] = [];
  if (timeouts.lockTimeoutMs !== undefined) wanted.push(['lock_timeout', timeouts.lockTimeoutMs]);
  if (timeouts.statementTimeoutMs !== undefined) {
    wanted.push(['statement_timeout', timeouts.statementTimeoutMs]);
  }
  if (wanted.length === 0) return body();
  const names = wanted.map(([name]) => name);
  const saved = await session.client.query(
    `SELECT n.name, pg_catalog.current_setting(n.name) AS value
       FROM pg_catalog.unnest($1::text[]) AS n(name)`,
    [names],
  );
  const previous = saved.rows
    .map(asRow)
    .map((r) => [str(r.name) ?? '', str(r.value) ?? ''] as const);
  await session.client.query(
    `SELECT pg_catalog.set_config(s.name, s.value, false)
       FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS s(name, value)`,
    [names, wanted.map(([, ms]) => String(Math.floor(ms)))],
  );
  try {
    return await body();
  } finally {
    try {
      await session.client.query(
        `SELECT pg_catalog.set_config(s.name, s.value, false)
           FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS s(name, value)`,
        [previous.map(([n]) => n), previous.map(([, v]) => v)],
      );
    } catch {
      // The session keeps our timeouts: never hand it back to a pool.
      session.taint();
    }
  }
}
