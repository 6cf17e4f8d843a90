import { LockRetriesExhaustedError, PartitioningError } from '../errors/index.js';
import type { MaintenanceSession } from '../maintenance/index.js';
import { errorCode, type QueryClient, quoteIdent } from '../sql/index.js';
import { readAttachment } from './inspect.js';
import { qualified } from './sql.js';

/**
 * The DDL of partition maintenance, each statement short and bounded by `lock_timeout` (set on
 * the session by the caller), retried with backoff when a lock is not granted. Every name here
 * came from the catalog or from `partitionName`, and is quoted.
 *
 * Lock levels, chosen so the application's queries keep running:
 * - a new partition is created standalone (`CREATE TABLE ... (LIKE parent ...)`) and then
 *   `ATTACH`ed, which takes SHARE UPDATE EXCLUSIVE on the parent (reads and writes continue);
 *   `CREATE TABLE ... PARTITION OF` would take ACCESS EXCLUSIVE. ATTACH clones the parent's
 *   indexes, foreign keys and triggers onto the new table. With a DEFAULT partition, ATTACH
 *   also locks and scans the DEFAULT partition (keep it small).
 * - retirement uses `DETACH PARTITION ... CONCURRENTLY` (SHARE UPDATE EXCLUSIVE); PostgreSQL
 *   refuses it when a DEFAULT partition exists, and then a plain DETACH (ACCESS EXCLUSIVE on the
 *   parent, for a moment) runs in a transaction under `SET LOCAL lock_timeout`.
 * - a detached table is dropped on its own, touching only itself; never with CASCADE.
 */

export interface DdlSession {
  readonly client: QueryClient;
  /** The held connection's maintenance session: tainted when it may hold state (a failed ROLLBACK), the lease is then destroyed. */
  readonly maintenance: MaintenanceSession;
  readonly lockTimeoutMs: number;
  /** Further attempts after a lock timeout or deadlock. */
  readonly lockRetries: number;
  readonly retryDelayMs: number;
  readonly sleep: (ms: number) => Promise<void>;
}

export interface ParentRef {
  readonly schema: string;
  readonly table: string;
  readonly persistence: string;
  readonly tablespace: string | undefined;
}

const LOCK_NOT_AVAILABLE = '55P03';
const DEADLOCK_DETECTED = '40P01';
const OBJECT_NOT_IN_PREREQUISITE_STATE = '55000';

/** Runs `operation`; on a lock timeout or deadlock, waits (exponential, jittered) and retries. */
export async function withLockRetry<T>(
  session: DdlSession,
  operation: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      const state = errorCode(error);
      const retriable = state === LOCK_NOT_AVAILABLE || state === DEADLOCK_DETECTED;
      if (!retriable) throw error;
      if (attempt >= session.lockRetries) throw new LockRetriesExhaustedError(attempt + 1, error);
      const base = session.retryDelayMs * 2 ** attempt;
      await session.sleep(base / 2 + Math.random() * (base / 2));
    }
  }
}

/**
 * `work` in one transaction, each lock waited for at most `lockTimeoutMs` (default the
 * session's); a failed ROLLBACK taints the session. `work` is a list of statements, or a
 * function that sends its own on the session's client.
 */
export async function inTransaction(
  session: DdlSession,
  work: readonly string[] | (() => Promise<void>),
  lockTimeoutMs = session.lockTimeoutMs,
) {
  const { client } = session;
  await client.query('BEGIN');
  try {
    await client.query("SELECT pg_catalog.set_config('lock_timeout', $1, true)", [
      `${lockTimeoutMs}ms`,
    ]);
    if (typeof work === 'function') await work();
    else for (const statement of work) await client.query(statement);
    await client.query('COMMIT');
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch {
      session.maintenance.taint();
    }
    throw error;
  }
}

/** Creates `name` like the parent and attaches it with `clause` (`FOR VALUES ...` or `DEFAULT`). */
export async function createPartition(
  session: DdlSession,
  parent: ParentRef,
  name: string,
  clause: string,
): Promise<void> {
  const parentName = qualified(parent.schema, parent.table);
  const child = qualified(parent.schema, name);
  // IDENTITY is left out on purpose: the partition shares the parent's identity once attached.
  // Indexes are left to ATTACH, which builds the parent's (and attaches matching ones).
  const like =
    'INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE ' +
    'INCLUDING COMPRESSION INCLUDING COMMENTS INCLUDING STATISTICS';
  const unlogged = parent.persistence === 'u' ? 'UNLOGGED ' : '';
  const tablespace =
    parent.tablespace === undefined ? '' : ` TABLESPACE ${quoteIdent(parent.tablespace)}`;
  await withLockRetry(session, () =>
    inTransaction(session, [
      `CREATE ${unlogged}TABLE ${child} (LIKE ${parentName} ${like})${tablespace}`,
      `ALTER TABLE ${parentName} ATTACH PARTITION ${child} ${clause}`,
    ]),
  );
}

export type DetachMethod = 'concurrent' | 'blocking';

/**
 * Detaches the partition; CONCURRENTLY unless a DEFAULT partition exists (or PostgreSQL says
 * one appeared). A detach left pending by an interrupted CONCURRENTLY run is finalized.
 * Returns the method that completed it.
 */
export async function detachPartition(
  session: DdlSession,
  parent: ParentRef,
  child: { readonly oid: string; readonly name: string; readonly detachPending: boolean },
  hasDefault: boolean,
): Promise<DetachMethod> {
  const parentName = qualified(parent.schema, parent.table);
  const childName = qualified(parent.schema, child.name);
  let concurrent = !hasDefault;
  return withLockRetry(session, async (attempt) => {
    const state =
      attempt === 0 && !child.detachPending
        ? 'attached'
        : await readAttachment(session.client, child.oid);
    if (state === 'detached') return concurrent ? 'concurrent' : 'blocking';
    if (state === 'pending') {
      // Outside a transaction block, like CONCURRENTLY itself.
      await session.client.query(
        `ALTER TABLE ${parentName} DETACH PARTITION ${childName} FINALIZE`,
      );
      return 'concurrent';
    }
    if (concurrent) {
      try {
        await session.client.query(
          `ALTER TABLE ${parentName} DETACH PARTITION ${childName} CONCURRENTLY`,
        );
        return 'concurrent';
      } catch (error) {
        // "cannot detach partitions concurrently when a default partition exists"
        if (errorCode(error) !== OBJECT_NOT_IN_PREREQUISITE_STATE) throw error;
        concurrent = false;
      }
    }
    await inTransaction(session, [`ALTER TABLE ${parentName} DETACH PARTITION ${childName}`]);
    return 'blocking';
  });
}

/** Drops a detached partition (RESTRICT: a view or foreign key that needs it stops the drop). */
export async function dropTable(session: DdlSession, schema: string, name: string): Promise<void> {
  await withLockRetry(session, () =>
    inTransaction(session, [`DROP TABLE ${qualified(schema, name)} RESTRICT`]),
  );
}

/** A database error from one step of maintenance, as a PartitioningError that says what to do. */
export function describeFailure(
  error: unknown,
  table: string,
  partition: string,
  action: string,
  session: Pick<DdlSession, 'lockTimeoutMs'>,
  defaultPartition: string | undefined,
): PartitioningError {
  if (error instanceof PartitioningError) return error;
  const cause = error instanceof LockRetriesExhaustedError ? error.last : error;
  const message = cause instanceof Error ? cause.message : String(cause);
  const state = errorCode(cause);
  if (error instanceof LockRetriesExhaustedError) {
    return new PartitioningError(
      'lock-timeout',
      table,
      `Could not ${action} ${partition}: a lock on ${table} was not granted within ` +
        `${session.lockTimeoutMs} ms (lockTimeoutMs), ${error.attempts} attempt(s); another ` +
        'session holds a conflicting lock (a long transaction or DDL). The next maintenance run ' +
        'tries again; raise lockTimeoutMs if this persists.',
      { cause, partition },
    );
  }
  if (state === '23514' && defaultPartition !== undefined) {
    return new PartitioningError(
      'default-has-rows',
      table,
      `Could not ${action} ${partition}: the DEFAULT partition "${defaultPartition}" holds rows ` +
        'that belong in it. Move those rows out of the DEFAULT partition (delete them there and ' +
        'insert them again once the partition exists, or create and fill the partition by hand); ' +
        'the next maintenance run creates it.',
      { cause, partition },
    );
  }
  if (state === '42P17') {
    return new PartitioningError(
      'overlap',
      table,
      `Could not ${action} ${partition}: ${message}. A partition that pgpulse did not make covers ` +
        'part of this range; align or remove it.',
      { cause, partition },
    );
  }
  return new PartitioningError(
    'ddl-failed',
    table,
    `Could not ${action} ${partition}: ${message}${state === undefined ? '' : ` (SQLSTATE ${state})`}.`,
    { cause, partition },
  );
}
