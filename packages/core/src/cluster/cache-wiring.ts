import {
  ALL_TABLES,
  CacheLayer,
  type CacheStats,
  InvalidationChannel,
  ResultCache,
} from '../cache/index.js';
import { nodeConnectionOptions, type ResolvedConfig } from '../config/index.js';
import type { ConsistencyGuard } from '../consistency/index.js';
import type { HealthMonitor } from '../health/index.js';
import type { Router, StatementPolicy } from '../routing/index.js';
import { registeredMeterProvider, type Telemetry } from '../telemetry/index.js';
import type { ClusterCache } from './types.js';

const EMPTY_CACHE_STATS: CacheStats = Object.freeze({
  hits: 0,
  misses: 0,
  bypasses: 0,
  entries: 0,
  bytes: 0,
  evictions: 0,
  invalidations: 0,
  hitRatio: 0,
});

/** The query result cache's parts: the store, the channel to other instances, their face. */
export interface CacheParts {
  readonly results: ResultCache | undefined;
  readonly channel: InvalidationChannel | undefined;
  /** `cluster.cache`. */
  readonly face: ClusterCache;
  /** The executor's cache layer (undefined without `cache`). */
  readonly layer: CacheLayer | undefined;
}

/** What the cache asks of the rest of the cluster. */
export interface CacheNeeds {
  readonly router: Router;
  readonly monitor: HealthMonitor;
  readonly guard: ConsistencyGuard;
  readonly policy: StatementPolicy;
  readonly telemetry: Telemetry | undefined;
}

/** Builds the `cache` section's parts (inert ones when it is not configured). */
export function wireCache(config: ResolvedConfig, needs: CacheNeeds): CacheParts {
  const { router, monitor, guard, policy, telemetry } = needs;
  const results = config.cache.enabled
    ? new ResultCache(
        config.cache,
        (time) => monitor.primaryLsnSince(time),
        config.telemetry.enabled
          ? (config.telemetry.meterProvider ?? registeredMeterProvider())
          : undefined,
      )
    : undefined;
  const channelName = config.cache.channel;
  const channel =
    results && channelName !== false
      ? new InvalidationChannel(channelName, config.cache.unsubscribedMaxAgeMs, {
          primary: () => router.primary(),
          connectionOptions: (node) => nodeConnectionOptions(node.config),
          connectTimeoutMs: config.health.timeoutMs,
          applicationName: config.applicationName,
          received: (tables, tags) => results.invalidate(tables, tags),
          resubscribed: () => results.invalidate([ALL_TABLES]),
        })
      : undefined;
  if (results && channel) {
    const bound = config.cache.unsubscribedMaxAgeMs;
    results.maxServedAgeMs = () => (channel.subscribed() ? undefined : bound);
  }
  const face: ClusterCache = {
    enabled: results !== undefined,
    invalidate: ({ tables = [], tags = [] }) => {
      results?.invalidate(tables, tags);
      channel?.publish(tables, tags);
    },
    clear: () => results?.clear(),
    stats: () => results?.stats() ?? EMPTY_CACHE_STATS,
    subscribed: () => channel?.subscribed() ?? false,
    channelStats: () => ({
      subscriptions: channel?.subscriptions ?? 0,
      sent: channel?.sent ?? 0,
      heard: channel?.heard ?? 0,
    }),
  };
  const layer = results
    ? new CacheLayer(results, {
        keyPrefix: `${config.primary.database}\u0000${config.primary.user}`,
        forcesPrimary: (cls, text) => policy.forcesPrimary(cls, text),
        mayBeView: (relation) => policy.mayBeView(relation),
        required: (scope) => guard.requiredPosition(scope),
        positionOf: (node) => {
          const probe = node.health.lastProbe;
          return node.role === 'primary' ? probe?.currentLsn : probe?.replayLsn;
        },
        hit: telemetry ? (text) => telemetry.cacheHit(text) : undefined,
        published: channel ? (tables) => channel.publish(tables) : undefined,
      })
    : undefined;
  return { results, channel, face, layer };
}
