export type { Alert, AlertKind, AlertState } from './alert.js';
export { type Diagnosis, type DownReason, diagnoseConnectionError } from './diagnosis.js';
export {
  type LockWait,
  type LongTransaction,
  listPartitionedTables,
  type NodeFigures,
  readLockContention,
  readLongTransactions,
  readNodeFigures,
  readTableStats,
  type SessionBrief,
  type TableStats,
} from './health-figures.js';
export { Monitoring, type MonitoringHooks } from './monitoring.js';
export type { WebhookStats } from './webhook.js';
