import { AsyncLocalStorage } from 'node:async_hooks';
import type { ConsistencyLevel } from '../config/index.js';

/** Where a scope sends its statements: by the SQL (`auto`), or every one to the primary. */
export type ScopeTarget = 'auto' | 'primary';

/**
 * What a context has done that its later reads must respect. Child scopes share their
 * parent's session, so a write inside `cluster.primary(...)` still counts for the reads that
 * follow it. Times are performance.now() values.
 */
export interface ConsistencySession {
  /** A replica must have replayed at least this WAL position to serve this context. */
  lsn: bigint | undefined;
  /** A write finished at this time and the primary position bounding it is not known yet. */
  pendingWriteAt: number | undefined;
  /** When this context last wrote (time-window mode). */
  lastWriteAt: number | undefined;
  /**
   * The highest replay position this context is known to have read at (from an imported
   * token): a replica behind it could show older data than the context already saw.
   */
  seen: bigint | undefined;
  /**
   * Set on import: `lsn` and `seen` are capped at the primary's position from the first probe
   * after this time, so a token from the future (or from before a failover that lost writes)
   * cannot keep the context off the replicas for good.
   */
  capSince: number | undefined;
  /** The node and time of this context's last read (monotonic reads). */
  lastRead: { readonly node: string; readonly at: number } | undefined;
  /** False for the process-wide session of statements made outside any scope. */
  readonly monotonic: boolean;
}

export interface RouteScope {
  readonly target: ScopeTarget;
  readonly consistency: ConsistencyLevel | undefined;
  /** Per-scope replica lag budget in ms. */
  readonly maxLagMs: number | undefined;
  /** Undefined outside `cluster.context()`: the process-wide session applies. */
  readonly session: ConsistencySession | undefined;
}

const storage = new AsyncLocalStorage<RouteScope>();

export function currentScope(): RouteScope | undefined {
  return storage.getStore();
}

export function newSession(monotonic = true): ConsistencySession {
  return {
    lsn: undefined,
    pendingWriteAt: undefined,
    lastWriteAt: undefined,
    seen: undefined,
    capSince: undefined,
    lastRead: undefined,
    monotonic,
  };
}

export type ScopeChanges = Partial<Omit<RouteScope, 'session'>> & {
  readonly session?: ConsistencySession;
};

/**
 * What a scope function returns: a lazy thenable (a drizzle query builder, a PrismaPromise) is
 * started inside the scope and handed back as a Promise, so `await cluster.primary(() =>
 * db.select()...)` runs on the primary even though the builder only executes when awaited.
 */
export type InScope<T> =
  T extends Promise<unknown> ? T : T extends PromiseLike<infer U> ? Promise<U> : T;

function startInScope<T>(value: T): InScope<T> {
  if (
    value !== null &&
    typeof value === 'object' &&
    !(value instanceof Promise) &&
    typeof (value as { then?: unknown }).then === 'function'
  ) {
    const thenable = value as unknown as PromiseLike<unknown>;
    return new Promise((resolve, reject) => thenable.then(resolve, reject)) as InScope<T>;
  }
  return value as InScope<T>;
}

/**
 * The scope `changes` make of `parent` (by default the current one). A pool view with a fixed
 * scope (`cluster.pool.scoped()`) derives it per statement instead of entering it with
 * AsyncLocalStorage: on Node 20 the first `run()` turns on promise hooks for the whole process,
 * a cost every promise of the application pays from then on.
 */
export function deriveScope(
  changes: ScopeChanges,
  parent: RouteScope | undefined = storage.getStore(),
): RouteScope {
  return {
    target: changes.target ?? parent?.target ?? 'auto',
    consistency: changes.consistency ?? parent?.consistency,
    maxLagMs: changes.maxLagMs ?? parent?.maxLagMs,
    // Only context() and withConsistencyToken() start a session; primary(), replica() and the
    // other overrides keep the one they run in, so their writes count for the reads after them.
    session: changes.session ?? parent?.session,
  };
}

/** Runs `fn` in a scope derived from the current one with `changes` applied. */
export function runInScope<T>(changes: ScopeChanges, fn: () => T): InScope<T> {
  return storage.run(deriveScope(changes), () => startInScope(fn()));
}
