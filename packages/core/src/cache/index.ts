export { CacheLayer, type CacheLayerDeps } from './cache-layer.js';
export { InvalidationChannel, type InvalidationChannelDeps } from './invalidation-channel.js';
export { CACHE_TYPES_ID } from './key.js';
export { withNamedTypes } from './named-types.js';
export { cachedOptionsKey } from './options.js';
export {
  type CacheOutcome,
  type CacheStats,
  type ReadPosition,
  type RequiredPosition,
  ResultCache,
} from './result-cache.js';
export { type CachedOptions, runCached } from './scope.js';
export { ALL_TABLES } from './tables.js';
