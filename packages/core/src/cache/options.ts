import { ConfigError } from '../errors/index.js';
import type { CachedOptions } from './scope.js';

/**
 * Checks a cache request made through an adapter (`db.$cached(options)`, `prisma.$cached(...)`)
 * before any statement runs: the cluster must have a cache, `ttlMs` must be a positive number,
 * tags non-empty strings. Returns a key that is the same for equal options, for the adapters'
 * memo of the scoped clients they build. `caller` names the call in the message.
 */
export function cachedOptionsKey(
  cacheEnabled: boolean,
  options: CachedOptions,
  caller: string,
): string {
  if (!cacheEnabled) {
    throw new ConfigError([
      {
        field: 'cache',
        message: `${caller} reads through the query result cache, which this cluster does not have: add a cache section, e.g. createCluster({ ..., cache: { maxBytes: 64 * 1024 * 1024, defaultTtlMs: 30_000 } })`,
      },
    ]);
  }
  const { ttlMs, tags = [] } = options;
  if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new ConfigError([
      {
        field: 'cache.ttlMs',
        message: `must be a positive number of milliseconds (got ${String(ttlMs)}); leave it out for cache.defaultTtlMs`,
      },
    ]);
  }
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag.length === 0) {
      throw new ConfigError([
        { field: 'cache.tags', message: 'each tag must be a non-empty string' },
      ]);
    }
  }
  return JSON.stringify([ttlMs ?? null, tags]);
}
