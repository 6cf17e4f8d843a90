export type { Alert, AlertKind, AlertState } from './alert.js';
export { Monitoring, type MonitoringHooks } from './monitoring.js';
export type { WebhookStats } from './webhook.js';
