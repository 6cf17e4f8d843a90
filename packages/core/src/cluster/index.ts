export {
  Cluster,
  type ClusterCache,
  type ClusterEvents,
  type ClusterStats,
  type ContextMiddleware,
  createCluster,
  type RouteExplanation,
} from './cluster.js';
export { createPoolFromPgOptions } from './from-pg-pool.js';
export type { SlowQueryReport } from './slow-queries.js';
