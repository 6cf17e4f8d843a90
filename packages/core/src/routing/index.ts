export type {
  Classification,
  ClassificationReason,
  Classifier,
  ClassifierOptions,
  SessionEffect,
  StatementKind,
  TransactionControl,
} from './classification.js';
export { BUILTIN_VOLATILE_FUNCTIONS, createClassifier } from './classifier.js';
export { Executor } from './executor.js';
export type {
  LeaseListener,
  PreparedStatementHook,
  PreparedUse,
  ReadCacheHook,
} from './executor-hooks.js';
export {
  type CatalogQuery,
  changesCatalog,
  FunctionCatalog,
  type FunctionCatalogOptions,
  primaryCatalogQuery,
} from './function-catalog.js';
export type { Placement } from './placement.js';
export { normalizeQueryArgs, type QueryRequest } from './query-args.js';
export {
  type ReadCheck,
  type ReadCheckKind,
  type ReadEligibility,
  readPipeline,
} from './read-pipeline.js';
export { isStandbyRefusal } from './refusals.js';
export { RoutedClient } from './routed-client.js';
export { Router, type RoutingReason } from './router.js';
export { RoutingPool } from './routing-pool.js';
export { type PoolScope, poolView } from './scoped-pool.js';
export {
  RoutingCounts,
  type SlowMark,
  type SlowMarkPlan,
  type StatementEvent,
  type StatementListener,
  type StatementObserver,
  StatementObservers,
  type StatementOutcome,
  type StatementWrapper,
} from './statement-observer.js';
export { CATALOG_VOLATILE_SQL, type PolicyReason, StatementPolicy } from './statement-policy.js';
