export { Cluster, createCluster } from './cluster.js';
export { createPoolFromPgOptions } from './from-pg-pool.js';
export {
  type CloseOptions,
  type ClusterCache,
  type ClusterEvents,
  type ClusterStats,
  type ContextMiddleware,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type RouteExplanation,
} from './types.js';
