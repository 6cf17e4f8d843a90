export {
  ClusterNode,
  type NodeCounters,
  type NodeStats,
  type TransactionStatus,
  trackTransactionStatus,
  transactionStatus,
} from './cluster-node.js';
