export {
  type CloseOptions,
  Cluster,
  type ClusterCache,
  type ClusterEvents,
  type ClusterStats,
  type ContextMiddleware,
  createCluster,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type RouteExplanation,
} from './cluster.js';
export { createPoolFromPgOptions } from './from-pg-pool.js';
export type { SlowQueryReport } from './slow-queries.js';
