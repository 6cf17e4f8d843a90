/**
 * Partition management: declarative RANGE (time intervals) / LIST / HASH partitions created
 * ahead of need, old range partitions retired by DETACH ... CONCURRENTLY and DROP, a maintenance
 * loop under a PostgreSQL advisory lock, and a per-partition report for monitoring.
 */

export { PartitioningError, type PartitioningErrorKind } from '../errors/index.js';
export type { DetachMethod } from './ddl.js';
export type { MigrationProgress } from './migration/copy.js';
export type {
  MigrationOptions,
  MigrationReport,
} from './migration/migrate.js';
export {
  type DetachedPartition,
  type MaintenanceReport,
  type PartitionChange,
  type PartitionConnectionProvider,
  PartitionManager,
  type PartitionManagerOptions,
  type PartitionManagerStats,
  type SetupOptions,
  type SetupResult,
  type TableMaintenance,
} from './partition-manager.js';
export { type PartitionReport, type PartitionReportEntry, partitionReport } from './report.js';
export { partitionLockKey } from './sql.js';
export {
  DEFAULT_PREMAKE,
  PARTITION_INTERVALS,
  PARTITION_TYPES,
  type PartitionInterval,
  type PartitionRetention,
  type PartitionStrategy,
  type PartitionType,
  parsePartitionStrategies,
  parsePartitionStrategy,
  RETENTION_MODES,
  RETENTION_UNITS,
  type ResolvedHashStrategy,
  type ResolvedListStrategy,
  type ResolvedPartitionStrategy,
  type ResolvedRangeStrategy,
  type RetentionMode,
  type RetentionUnit,
} from './strategy.js';
