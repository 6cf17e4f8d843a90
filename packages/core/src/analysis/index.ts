/**
 * Slow-query capture and plan analysis: fingerprints and statistics per statement, EXPLAIN
 * plans captured off the query path, pev2-style findings, and query advice.
 */
export {
  type AnalyzeQueryOptions,
  analyzeQuery,
  type QueryAnalysis,
  type QuerySuggestion,
  type SuggestionKind,
  type SuggestionPriority,
} from './analyze-query.js';
export { fetchColumns, fetchRelations } from './catalog.js';
export { ExplainCapture } from './explain-capture.js';
export type * from './explain-capture-types.js';
export {
  type ExplainMode,
  type ExplainOutcome,
  explainStatement,
  GENERIC_PLAN_VERSION,
  inReadOnlyTransaction,
  underSavepoint,
} from './explain-runner.js';
export {
  type FingerprintSource,
  fingerprintQuery,
  type QueryFingerprint,
} from './fingerprint.js';
export { LatencyHistogram } from './latency-histogram.js';
export {
  type ExplainResult,
  flattenPlan,
  nodeType,
  type PlanNode,
  type PlanVisit,
  parseExplainJson,
  planNumber,
  planString,
  planStrings,
  walkPlan,
} from './plan.js';
export {
  analyzePlan,
  type FindingSeverity,
  type PlanAnalyzerOptions,
  type PlanFinding,
  type PlanFindingKind,
  worstSeverity,
} from './plan-analyzer.js';
export {
  type ExpressionColumn,
  type ExpressionToken,
  expressionColumns,
  filterColumns,
  redactExpression,
  tokenizeExpression,
} from './plan-expression.js';
export { redactPlan } from './redact-plan.js';
export { type PlanRecorder, SlowQueries, type SlowQueryReport } from './slow-queries.js';
export { SlowQueryLog } from './slow-query-log.js';
export type * from './slow-query-log-types.js';
export { inspectStatement, type StatementShape } from './statement.js';
