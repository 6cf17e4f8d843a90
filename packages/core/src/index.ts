/**
 * @pgpulse/core: read/write splitting, replica-aware routing, per-node pools and circuit
 * breakers for PostgreSQL, behind one pg.Pool-compatible facade.
 */

export {
  type AdviseIndexesOptions,
  type AdviseStatementOptions,
  type ApplyOptions,
  type ApplyResult,
  adviseIndexes,
  adviseStatementIndexes,
  applyRecommendations,
  type BloatedIndex,
  type BloatRebuildResult,
  type DropResult,
  type DuplicateIndex,
  dropIndex,
  type IndexRecommendation,
  type IndexReport,
  type InvalidIndex,
  type MaintenanceOptions,
  type RebuildBloatedOptions,
  type RebuildResult,
  rebuildBloatedIndexes,
  rebuildIndex,
  type StatementIndexAdvice,
  type StatementIndexRecommendation,
  type UnusedIndex,
  type WhatIfMethod,
} from './advisors/index.js';
export {
  type AnalyzeQueryOptions,
  analyzeQuery,
  type CapturedPlan,
  type ExplainCaptureStats,
  type PlanFinding,
  type QueryAnalysis,
  type QuerySuggestion,
  type SlowQueryEntry,
} from './analysis/index.js';
export type { CachedOptions, CacheStats } from './cache/index.js';
export { CACHE_TYPES_ID, withNamedTypes } from './cache/index.js';
export {
  type CloseOptions,
  Cluster,
  type ClusterCache,
  type ClusterEvents,
  type ClusterStats,
  type ContextMiddleware,
  createCluster,
  createPoolFromPgOptions,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type RouteExplanation,
  type SlowQueryReport,
} from './cluster/index.js';
export type {
  CacheOptions,
  ConsistencyLevel,
  EtcdCoordinatorOptions,
  FailoverOptions,
  LagPolicy,
  LoadBalancingStrategy,
  MonitoringOptions,
  MonitoringThresholds,
  NodeConfig,
  PgPulseConfig,
  PoolingMode,
  PreparedStatementsOptions,
  PromotionStrategy,
  ResetOnRelease,
  ResolvedConfig,
  WebhookOptions,
} from './config/index.js';
export {
  fromPgPoolOptions,
  PG_CLIENT_SETTING_FIELDS,
  type PgPoolMapping,
  parseConfig,
  parseServerOptions,
  redactUrl,
} from './config/index.js';
export type { InScope } from './context/index.js';
export {
  createDashboardHandler,
  type DashboardHandler,
  type DashboardOptions,
  type DashboardServer,
  type DashboardSnapshot,
  type ServeDashboardOptions,
  serveDashboard,
} from './dashboard/index.js';
export {
  BadTokenError,
  ClusterClosedError,
  ConfigError,
  type ConfigIssue,
  type ConnectFailure,
  ConnectTimeoutError,
  type ConnectTimeoutPhase,
  CoordinatorUnavailableError,
  NodeConnectionError,
  type NodeLabel,
  type NodeRole,
  NoHealthyReplicaError,
  PartitioningError,
  type PartitioningErrorKind,
  PgPulseError,
  PoolClosedError,
  PoolTimeoutError,
  PrimaryUnavailableError,
  ProbeTimeoutError,
  ReadNeedsPrimaryError,
  SessionBehindPoolerError,
  SessionOnPoolError,
  SplitBrainError,
  StatementTimeoutError,
  TransactionOnPoolError,
} from './errors/index.js';
export type {
  FailoverCandidate,
  FailoverCompleted,
  FailoverCoordinator,
  FailoverStarted,
  LostWindow,
  NodeIdentity,
  PromotionLease,
  PromotionRecord,
  SeveralInstancesEvent,
  SplitBrainEvent,
} from './failover/index.js';
export { type BreakerState, isAvailabilityError } from './health/index.js';
export {
  type Alert,
  type AlertKind,
  type AlertState,
  type Diagnosis,
  type DownReason,
  diagnoseConnectionError,
  type LockWait,
  type LongTransaction,
  type NodeFigures,
  type SessionBrief,
  type TableStats,
} from './monitoring/index.js';
export {
  type MaintenanceReport,
  type MigrationOptions,
  type MigrationProgress,
  type MigrationReport,
  PartitionManager,
  type PartitionReport,
  type PartitionStrategy,
  partitionReport,
  type SetupOptions,
  type SetupResult,
} from './partitioning/index.js';
export {
  type Classification,
  type Classifier,
  classify,
  createClassifier,
  type PoolScope,
  RoutedClient,
  type RouteReason,
  RoutingPool,
  type RoutingReason,
} from './routing/index.js';
export {
  type DatabaseHealthReport,
  DatabaseOptimizationService,
  type DatabaseOptimizationServiceOptions,
  type IndexOptimization,
  type OptimizeIndexesOptions,
  type ReadOptions,
} from './service/index.js';
export { loadParser } from './sql/index.js';
export type { NodeStats } from './topology/index.js';
