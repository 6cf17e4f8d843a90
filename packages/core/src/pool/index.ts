export { type Clock, type ClockTimer, systemClock } from './clock.js';
export type { PooledConnection, RemoveReason } from './connection.js';
export { NodePool, type NodePoolFigures, type NodePoolListener } from './node-pool.js';
export type { ConnectionConfig, NodePoolOptions } from './options.js';
export { type TransactionStatus, transactionStatus } from './transaction-status.js';
