export { ConnectTimeoutError, type ConnectTimeoutPhase, PoolClosedError } from './errors.js';
export {
  type ConnectionConfig,
  NodePool,
  type NodePoolFigures,
  type NodePoolOptions,
  type PooledConnection,
} from './node-pool.js';
