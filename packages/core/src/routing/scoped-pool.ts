import type pg from 'pg';
import type { ConsistencyLevel } from '../config/index.js';
import type { ScopeChanges } from '../context/index.js';

/** What a `cluster.pool.scoped()` view fixes for every statement sent through it. */
export interface PoolScope {
  /** `'primary'`: every statement, reads included; `'replica'`: reads on replicas even after this context's writes. */
  readonly target?: 'primary' | 'replica';
  /** The consistency level of its reads (as `cluster.withConsistency()`). */
  readonly consistency?: ConsistencyLevel;
  /** Reads only from replicas at most this far behind (as `cluster.withMaxLag()`). */
  readonly maxLagMs?: number;
}

type ConnectCallback = (err: Error | undefined, client?: pg.PoolClient, done?: () => void) => void;

/** What a view needs of the routing pool (declared here so the two files do not import each other). */
interface ScopedRoutes extends pg.Pool {
  routeQuery(first: unknown, second: unknown, third: unknown, fixed: ScopeChanges): unknown;
  /** Its callback is pg.Pool's connect callback, typed with the pool's own client there. */
  routeConnect(callback: never, fixed: ScopeChanges): unknown;
}

/**
 * A proxy of `pool` whose `query` and `connect` carry `changes`. Other members are the pool's
 * own, methods bound to it, since the pool keeps its state in private fields.
 */
export function scopedView(pool: ScopedRoutes, changes: ScopeChanges): pg.Pool {
  const query = (first: unknown, second?: unknown, third?: unknown): unknown =>
    pool.routeQuery(first, second, third, changes);
  const connect = (callback?: ConnectCallback): unknown =>
    pool.routeConnect(callback as never, changes);
  return poolView(pool, { query, connect });
}

/**
 * A proxy of `pool` with `overrides` in place of some of its members; the others are the
 * pool's own, methods bound to it (a pool keeps its state in private fields). It stays
 * `instanceof pg.Pool`, so ORMs that test for a pool still take it.
 */
export function poolView<P extends pg.Pool>(
  pool: P,
  overrides: Readonly<Record<string, unknown>>,
): P {
  const bound = new WeakMap<object, unknown>();
  return new Proxy(pool, {
    get(target, property) {
      if (typeof property === 'string' && Object.hasOwn(overrides, property))
        return overrides[property];
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      let fn = bound.get(value);
      if (fn === undefined) {
        fn = value.bind(target);
        bound.set(value, fn);
      }
      return fn;
    },
  });
}
