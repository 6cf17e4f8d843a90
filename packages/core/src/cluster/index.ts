export {
  Cluster,
  type ClusterEvents,
  type ClusterStats,
  type ContextMiddleware,
  createCluster,
  type RouteExplanation,
} from './cluster.js';
export type { SlowQueryReport } from './slow-queries.js';
