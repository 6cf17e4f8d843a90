export {
  ClusterNode,
  type NodeCounters,
  type NodeStats,
} from './cluster-node.js';
