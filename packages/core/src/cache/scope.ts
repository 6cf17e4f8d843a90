import { AsyncLocalStorage } from 'node:async_hooks';

/** What `cluster.cached(fn, options)` asks of the reads inside `fn`. */
export interface CachedOptions {
  /** How long an entry may be served (default `cache.defaultTtlMs`). */
  readonly ttlMs?: number;
  /** Names to drop these entries by with `cluster.cache.invalidate({ tags })`. */
  readonly tags?: readonly string[];
}

export interface CacheScope {
  readonly ttlMs: number | undefined;
  readonly tags: readonly string[];
}

// A storage of its own rather than a field of the routing scope: caching is orthogonal to
// where a statement goes, and nesting cached() inside primary() (or the reverse) keeps both.
const storage = new AsyncLocalStorage<CacheScope>();

export function currentCacheScope(): CacheScope | undefined {
  return storage.getStore();
}

/**
 * Runs `fn` with its cacheable reads cached; an inner scope's TTL wins, tags accumulate. A lazy
 * thenable (a drizzle query builder, a PrismaPromise) is started inside the scope.
 */
export function runCached<T>(
  options: CachedOptions,
  fn: () => T,
): T extends Promise<unknown> ? T : T extends PromiseLike<infer U> ? Promise<U> : T {
  const parent = storage.getStore();
  const scope: CacheScope = {
    ttlMs: options.ttlMs ?? parent?.ttlMs,
    tags: [...(parent?.tags ?? []), ...(options.tags ?? [])],
  };
  return storage.run(scope, () => {
    const value: unknown = fn();
    if (
      value !== null &&
      typeof value === 'object' &&
      !(value instanceof Promise) &&
      typeof (value as { then?: unknown }).then === 'function'
    ) {
      const thenable = value as PromiseLike<unknown>;
      return new Promise((resolve, reject) => thenable.then(resolve, reject));
    }
    return value;
  }) as never;
}
