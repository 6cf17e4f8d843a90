/**
 * Index advice and maintenance: missing indexes from slow-query plans and foreign keys,
 * duplicate / unused / invalid / bloated indexes, and applying the advice with
 * CREATE INDEX CONCURRENTLY under an advisory lock (invariants 7 and 8).
 */

export { IndexMaintenanceError, IndexSessionError } from '../errors/index.js';
export {
  createIndexSql,
  type IndexShape,
  indexLockKey,
  indexNames,
  type PartialPredicate,
  type SortDirection,
} from '../sql/index.js';
export type { BloatedIndex, BloatMethod } from './bloat.js';
export {
  type BloatRebuildResult,
  type RebuildBloatedOptions,
  rebuildBloatedIndexes,
} from './bloat-rebuild.js';
export type { DuplicateIndex } from './duplicates.js';
export type { ForeignKeyGap } from './foreign-key-recommendations.js';
export {
  type AdviseIndexesOptions,
  adviseIndexes,
  type IndexReport,
  type InvalidIndex,
  type InvalidIndexAction,
  type UnusedIndex,
} from './index-advisor.js';
export {
  type ApplyOptions,
  type ApplyResult,
  type ApplyStatus,
  applyRecommendations,
} from './index-apply.js';
export {
  type DropResult,
  type DropStatus,
  dropIndex,
  type RebuildResult,
  type RebuildStatus,
  rebuildIndex,
} from './index-maintenance.js';
export type { MaintenanceOptions } from './maintenance-frame.js';
export {
  type AdviseStatementOptions,
  adviseStatementIndexes,
  type StatementIndexAdvice,
  type StatementIndexRecommendation,
} from './query-advice.js';
export type {
  IndexPriority,
  IndexRecommendation,
  RecommendationSource,
} from './recommendations.js';
export type { SlowQueryIndexInput } from './slow-query-recommendations.js';
export type { WhatIfMethod } from './what-if.js';
