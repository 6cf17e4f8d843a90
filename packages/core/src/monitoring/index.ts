export type { Alert, AlertKind, AlertState } from './alert.js';
export { type Diagnosis, type DownReason, diagnoseConnectionError } from './diagnosis.js';
export { Monitoring, type MonitoringHooks } from './monitoring.js';
export type { WebhookStats } from './webhook.js';
