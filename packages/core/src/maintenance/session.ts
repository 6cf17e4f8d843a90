import type { ConnectionLease, QueryClient } from '../sql/index.js';

/**
 * One database session held for maintenance DDL (index builds, partition sets). A session-level
 * advisory lock must be taken, used and released on one connection, and session settings
 * (`lock_timeout`, `statement_timeout`) must be put back on the connection they were set on, so
 * the work never goes statement by statement through a pool: one connection is held for it.
 */
export interface MaintenanceSession {
  readonly client: QueryClient;
  /**
   * The backend its owner checked the session on; every advisory lock then confirms it ran
   * there. Undefined: the connection is dedicated (a lease), not checked.
   */
  readonly check: SessionCheck | undefined;
  /** True once the connection may hold state of ours: it is destroyed, never handed back. */
  readonly tainted: boolean;
  /** Marks the connection unusable (a lock or a setting may be left on it). */
  taint(): void;
}

/** What a session checks: the pid it must stay on, and the error when a lock lands elsewhere. */
export interface SessionCheck {
  /** pg_backend_pid() of the session. */
  readonly pid: number;
  /** The typed error thrown when an advisory lock was taken on another backend. */
  readonly otherBackend: () => Error;
}

/** A session over `client`; with `check`, every advisory lock confirms the backend. */
export function maintenanceSession(client: QueryClient, check?: SessionCheck): MaintenanceSession {
  let tainted = false;
  return {
    client,
    check,
    get tainted() {
      return tainted;
    },
    taint() {
      tainted = true;
    },
  };
}

/**
 * Runs `body` on a session over a leased connection, then releases the lease: destroyed
 * (`release(true)`) when the session was tainted, returned otherwise.
 */
export async function onLease<T>(
  lease: ConnectionLease,
  body: (session: MaintenanceSession) => Promise<T>,
): Promise<T> {
  const session = maintenanceSession(lease.client);
  try {
    return await body(session);
  } finally {
    lease.release(session.tainted);
  }
}
