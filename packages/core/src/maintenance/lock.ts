import type { MaintenanceSession } from './session.js';

/**
 * The session-level advisory lock under which one pgpulse instance of a fleet does a table's
 * maintenance (`advisoryLockKey(kind, schema, table)` in sql/): `pg_try_advisory_lock`, never a
 * wait, so the other instances see `locked` at once and do nothing.
 */

/** The body's value when the lock was granted; `locked: false` when another session holds it. */
export type UnderLock<T> =
  | { readonly locked: true; readonly value: T }
  | { readonly locked: false };

function row(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
}

function pidOf(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

/**
 * pg_try_advisory_lock(key) on the session. When the session was checked (`check`), the
 * lock confirms it ran on that backend; if not, the session is tainted and the check's typed
 * error thrown. A failed statement rejects with the driver's error (the caller types it).
 */
export async function tryAdvisoryLock(session: MaintenanceSession, key: bigint): Promise<boolean> {
  const result = await session.client.query(
    'SELECT pg_catalog.pg_try_advisory_lock($1::int8) AS locked, pg_catalog.pg_backend_pid() AS pid',
    [key.toString()],
  );
  const r = row(result.rows[0]);
  const locked = r.locked === true || r.locked === 't' || r.locked === 'true';
  const { check } = session;
  if (check !== undefined && pidOf(r.pid) !== check.pid) {
    session.taint();
    throw check.otherBackend();
  }
  return locked;
}

/**
 * pg_advisory_unlock(key). Never throws: when it fails the session is tainted (a broken
 * connection releases its locks as it closes; it must not be reused).
 */
export async function releaseAdvisoryLock(session: MaintenanceSession, key: bigint): Promise<void> {
  try {
    await session.client.query('SELECT pg_catalog.pg_advisory_unlock($1::int8) AS unlocked', [
      key.toString(),
    ]);
  } catch {
    session.taint();
  }
}

/**
 * Runs `body` under the advisory lock `key`, released whatever happens (a failed release taints
 * the session). Resolves `{ locked: false }` without running `body` when another session holds
 * it. Rejects with the lock statement's error, or with whatever `body` throws.
 */
export async function underAdvisoryLock<T>(
  session: MaintenanceSession,
  key: bigint,
  body: () => Promise<T>,
): Promise<UnderLock<T>> {
  if (!(await tryAdvisoryLock(session, key))) return { locked: false };
  try {
    return { locked: true, value: await body() };
  } finally {
    await releaseAdvisoryLock(session, key);
  }
}
