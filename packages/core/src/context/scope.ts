import { AsyncLocalStorage } from 'node:async_hooks';
import type { ConsistencyLevel } from '../config/index.js';

/** Where a scope sends its statements: by the SQL (`auto`), or every one to one role. */
export type ScopeTarget = 'auto' | 'primary' | 'replica';

/**
 * What a context has done that later reads must respect. Child scopes share their parent's
 * session, so a write inside `cluster.primary(...)` still counts for the reads that follow it.
 */
export interface ConsistencySession {
  /** Highest WAL position this context's writes reached (read-your-writes token), if any. */
  lsn: bigint | undefined;
  /** When this context last wrote (ms since epoch), for the time-window mode. */
  lastWriteAt: number | undefined;
}

export interface RouteScope {
  readonly target: ScopeTarget;
  readonly consistency: ConsistencyLevel | undefined;
  /** Per-scope replica lag budget in ms (tighter than or replacing the cluster's). */
  readonly maxLagMs: number | undefined;
  readonly session: ConsistencySession;
}

const storage = new AsyncLocalStorage<RouteScope>();

export function currentScope(): RouteScope | undefined {
  return storage.getStore();
}

export function newSession(): ConsistencySession {
  return { lsn: undefined, lastWriteAt: undefined };
}

/** Runs `fn` in a scope derived from the current one with `changes` applied. */
export function runInScope<T>(
  changes: Partial<Omit<RouteScope, 'session'>> & { session?: ConsistencySession },
  fn: () => T,
): T {
  const parent = storage.getStore();
  const scope: RouteScope = {
    target: changes.target ?? parent?.target ?? 'auto',
    consistency: changes.consistency ?? parent?.consistency,
    maxLagMs: changes.maxLagMs ?? parent?.maxLagMs,
    session: changes.session ?? parent?.session ?? newSession(),
  };
  return storage.run(scope, fn);
}
