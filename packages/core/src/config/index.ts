export { forgetPassword, type PasswordSource, passwordSource } from './credentials.js';
export {
  fallbackPhrase,
  type IssueOptions,
  oneOf,
  toConfigIssues,
  type ZodIssue,
} from './issues.js';
export {
  createNodeConfig,
  type NodeConfigInit,
  type NodeConnectionOptions,
  nodeConnectionOptions,
} from './node.js';
export type {
  NodeInput,
  NodeOptions,
  ReplicaInput,
  ReplicaOptions,
  SslOption,
} from './node-types.js';
export { redactUrl } from './node-url.js';
export type * from './option-values.js';
export {
  type ConnectionSetup,
  fromPgPoolOptions,
  type PgPoolMapping,
  type SetupClient,
} from './pg-pool-options.js';
export { parseConfig } from './resolve.js';
export type {
  NodeConfig,
  ResolvedCacheConfig,
  ResolvedCircuitBreakerConfig,
  ResolvedConfig,
  ResolvedConsistencyConfig,
  ResolvedEtcdCoordinatorConfig,
  ResolvedFailoverConfig,
  ResolvedHealthConfig,
  ResolvedMonitoringConfig,
  ResolvedPoolConfig,
  ResolvedPreparedStatementsConfig,
  ResolvedReplicaLagConfig,
  ResolvedRoutingConfig,
  ResolvedSlowQueryConfig,
  ResolvedTelemetryConfig,
  ResolvedWebhookConfig,
} from './resolved-types.js';
export {
  PG_CLIENT_SETTING_FIELDS,
  parseOptions as parseServerOptions,
} from './server-settings.js';
export type {
  CacheOptions,
  CircuitBreakerConfigOptions,
  ConsistencyOptions,
  EtcdCoordinatorOptions,
  FailoverOptions,
  HealthOptions,
  LoadBalancingStrategy,
  MonitoringOptions,
  MonitoringThresholds,
  NodeRole,
  PgPulseConfig,
  PoolOptions,
  PreparedStatementsOptions,
  ReplicaLagOptions,
  RoutingOptions,
  SlowQueryOptions,
  TelemetryConfigOptions,
  WebhookOptions,
} from './types.js';
