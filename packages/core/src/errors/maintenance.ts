import { PgPulseError } from './pgpulse-error.js';

/**
 * The errors of pgpulse's maintenance work on the database: EXPLAIN, index DDL and its
 * session, partition sets. Each carries a stable code, says whether a retry may succeed, and
 * never quotes a data value (invariant 6).
 */

/** A failed EXPLAIN. Its message never quotes a parameter value (invariant 6). */
export class ExplainError extends PgPulseError {
  /** The server's SQLSTATE, when the server refused the EXPLAIN. */
  readonly sqlState: string | undefined;

  constructor(message: string, sqlState?: string, options?: { cause?: unknown }) {
    super('PGPULSE_EXPLAIN_FAILED', message, options);
    this.sqlState = sqlState;
  }
}

/** Index DDL the server refused or that was left unusable. Never quotes a data value. */
export class IndexMaintenanceError extends PgPulseError {
  /** The server's SQLSTATE, when the server refused the statement. */
  readonly sqlState: string | undefined;

  constructor(message: string, sqlState?: string, options?: { cause?: unknown }) {
    super('PGPULSE_INDEX_DDL', message, {
      ...options,
      // Lock and statement timeouts, deadlocks, serialization: worth another go later.
      retriable: sqlState === '55P03' || sqlState === '57014' || sqlState?.startsWith('40'),
    });
    this.sqlState = sqlState;
  }
}

/** A connection unfit for index DDL: inside a transaction block, or on a standby. */
export class IndexSessionError extends PgPulseError {}

/**
 * A maintenance statement that kept meeting a lock timeout or a deadlock until its retries
 * ran out. Partition maintenance reports it as a PartitioningError 'lock-timeout'; `last` is
 * the driver's final error, `attempts` how many were made.
 */
export class LockRetriesExhaustedError extends PgPulseError {
  constructor(
    readonly attempts: number,
    readonly last: unknown,
  ) {
    super(
      'PGPULSE_LOCK_RETRIES_EXHAUSTED',
      `A lock was not granted in ${attempts} attempt(s) (${last instanceof Error ? last.message : String(last)}): another session holds a conflicting lock; try again later, or raise lockTimeoutMs.`,
      { cause: last, retriable: true },
    );
  }
}

/** What went wrong, as a stable code (the `code` property carries the `PGPULSE_` form). */
export type PartitioningErrorKind =
  /** The parent table does not exist. */
  | 'table-not-found'
  /** The parent exists but is a regular (or other non-partitioned) relation. */
  | 'not-partitioned'
  /** The table's partitioning (method, key column, key type) does not match the strategy. */
  | 'strategy-mismatch'
  /** The session is connected to a standby; maintenance must run on the primary. */
  | 'read-only'
  /** A lock was not granted within `lockTimeoutMs` after every retry. */
  | 'lock-timeout'
  /** Wanted bounds overlap a partition the strategy did not make. */
  | 'overlap'
  /** The DEFAULT partition holds rows that belong in a partition about to be created. */
  | 'default-has-rows'
  /** Any other failure of a catalog query or a DDL statement (see `cause`). */
  | 'ddl-failed'
  /** No connection could be acquired for a maintenance run. */
  | 'connect-failed'
  /**
   * Migrating a plain table: a primary key or unique constraint lacks the partition column
   * (PostgreSQL enforces uniqueness per partition, so it must include the key).
   */
  | 'key-not-in-unique'
  /**
   * Migrating a plain table: something the online migration cannot carry over (foreign keys or
   * views that point at the table, its own triggers, row security, inheritance, no primary key,
   * a nullable partition column...). The message names it and the fix.
   */
  | 'unsupported-table'
  /** Migrating a plain table: a name the migration needs (`<table>_old`, a partition) is taken. */
  | 'name-taken'
  /**
   * Migrating a plain table: the copy or the swap failed (a lock not granted in time is
   * 'lock-timeout' instead); what the migration made was removed and the original table is as
   * it was (see `cause`).
   */
  | 'migration-failed';

const CODES: Record<PartitioningErrorKind, string> = {
  'table-not-found': 'PGPULSE_PARTITION_TABLE_NOT_FOUND',
  'not-partitioned': 'PGPULSE_PARTITION_NOT_PARTITIONED',
  'strategy-mismatch': 'PGPULSE_PARTITION_STRATEGY_MISMATCH',
  'read-only': 'PGPULSE_PARTITION_READ_ONLY',
  'lock-timeout': 'PGPULSE_PARTITION_LOCK_TIMEOUT',
  overlap: 'PGPULSE_PARTITION_OVERLAP',
  'default-has-rows': 'PGPULSE_PARTITION_DEFAULT_HAS_ROWS',
  'ddl-failed': 'PGPULSE_PARTITION_DDL_FAILED',
  'connect-failed': 'PGPULSE_PARTITION_CONNECT_FAILED',
  'key-not-in-unique': 'PGPULSE_PARTITION_KEY_NOT_IN_UNIQUE',
  'unsupported-table': 'PGPULSE_PARTITION_UNSUPPORTED_TABLE',
  'name-taken': 'PGPULSE_PARTITION_NAME_TAKEN',
  'migration-failed': 'PGPULSE_PARTITION_MIGRATION_FAILED',
};

const RETRIABLE: ReadonlySet<PartitioningErrorKind> = new Set([
  'lock-timeout',
  'connect-failed',
  'read-only',
]);

/** A partition set could not be verified, created or trimmed; the message says how to fix it. */
export class PartitioningError extends PgPulseError {
  readonly kind: PartitioningErrorKind;
  /** `"schema"."table"` of the partitioned parent concerned. */
  readonly table: string;
  /** The partition concerned, when the failure is about one. */
  readonly partition: string | undefined;

  constructor(
    kind: PartitioningErrorKind,
    table: string,
    message: string,
    options?: { cause?: unknown; partition?: string },
  ) {
    super(CODES[kind], message, { cause: options?.cause, retriable: RETRIABLE.has(kind) });
    this.kind = kind;
    this.table = table;
    this.partition = options?.partition;
  }
}
