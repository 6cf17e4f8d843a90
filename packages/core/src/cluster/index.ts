export {
  Cluster,
  type ClusterEvents,
  type ClusterStats,
  createCluster,
  type RouteExplanation,
  type SlowQueryReport,
} from './cluster.js';
