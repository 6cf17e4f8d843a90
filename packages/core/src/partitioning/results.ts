import type { PartitioningError } from '../errors/index.js';
import type { DetachMethod } from './ddl.js';
import type { MigrationOptions, MigrationReport } from './migration/migrate.js';
import type { PartitionType, ResolvedPartitionStrategy } from './strategy.js';

/* What partition maintenance reports, per table and per run, and the options of `setup()`. */

/** A partition created (or detached), with its bound. */
export interface PartitionChange {
  readonly name: string;
  /** `FOR VALUES ...` or `DEFAULT`. */
  readonly bound: string;
}

export interface DetachedPartition extends PartitionChange {
  /** `concurrent` (DETACH ... CONCURRENTLY or FINALIZE) or `blocking` (a DEFAULT partition exists). */
  readonly method: DetachMethod;
}

/** One table's run: done, skipped (locked) or failed, with what it created, detached and dropped. */
export interface TableMaintenance {
  readonly schema: string;
  readonly table: string;
  readonly type: PartitionType;
  /**
   * `done`: nothing left to do; `skipped`: another session holds the table's advisory lock
   * (`reason: 'locked'`) and nothing was changed; `failed`: see `errors` (what did succeed is
   * listed all the same).
   */
  readonly status: 'done' | 'skipped' | 'failed';
  readonly reason: 'locked' | undefined;
  readonly created: readonly PartitionChange[];
  readonly detached: readonly DetachedPartition[];
  /** Names of the detached partitions that were dropped. */
  readonly dropped: readonly string[];
  readonly errors: readonly PartitioningError[];
  /** Set when `setup(strategy, { migrate })` converted a plain table (with partition sizes). */
  readonly migration?: MigrationReport;
}

/** What `setup()` did to its table: the partitions made and, with `migrate`, the conversion. */
export type SetupResult = TableMaintenance;

/** Options of `setup()`. */
export interface SetupOptions {
  /**
   * When the table is a plain (unpartitioned) table, convert it online (range strategies):
   * a partitioned table beside it, changes mirrored, rows copied in batches, a short swap. See
   * `MigrationOptions`; `true` takes the defaults. Without it a plain table is an error.
   */
  readonly migrate?: boolean | MigrationOptions;
}

/**
 * One partition maintenance run: when it started and finished, and per table whether it was
 * done, skipped (another session held the lock) or failed.
 */
export interface MaintenanceReport {
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly tables: readonly TableMaintenance[];
}

export interface PartitionManagerStats {
  /** Runs completed (direct calls and loop runs). */
  readonly runs: number;
  /** Errors reported (each also went to `onError`). */
  readonly errors: number;
  /** Table runs skipped because another session held the advisory lock. */
  readonly skippedLocked: number;
  /** `maintain()` calls that joined a run already in progress instead of starting another. */
  readonly joined: number;
  readonly looping: boolean;
  readonly lastReport: MaintenanceReport | undefined;
}

/** A table's result before any work: done, nothing changed. */
export function emptyResult(strategy: ResolvedPartitionStrategy): TableMaintenance {
  return {
    schema: strategy.schema,
    table: strategy.table,
    type: strategy.type,
    status: 'done',
    reason: undefined,
    created: [],
    detached: [],
    dropped: [],
    errors: [],
  };
}

export function failedResult(
  strategy: ResolvedPartitionStrategy,
  error: PartitioningError,
): TableMaintenance {
  return { ...emptyResult(strategy), status: 'failed', errors: [error] };
}
