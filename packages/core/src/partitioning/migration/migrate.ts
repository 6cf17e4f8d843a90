import { ConfigError, PartitioningError } from '../../errors/index.js';
import { type DdlSession, describeFailure, inTransaction, withLockRetry } from '../ddl.js';
import { record } from '../inspect.js';
import { DEFAULT_SUFFIX, rangeClause, type WantedPartition } from '../plan.js';
import { type PartitionReport, partitionReport } from '../report.js';
import { partitionName, qualified } from '../sql.js';
import type { ResolvedRangeStrategy } from '../strategy.js';
import { addPeriods, periodStart, periodSuffix } from '../time.js';
import {
  copyRows,
  createShadow,
  hasLeftovers,
  installMirror,
  type MigrationProgress,
  removeShadow,
} from './copy.js';
import { planRenames } from './names.js';
import { readSource } from './source.js';
import { swap } from './swap.js';
import { MIRROR_TRIGGER, TRUNCATE_TRIGGER } from './triggers.js';

/**
 * `setupPartitioning` on a plain table: the online migration to range partitions.
 *
 * 1. Check the table (source.ts): a primary key that contains the partition column, nothing
 *    pointing at the table that would keep pointing at the old one.
 * 2. Create the partitioned table beside it with a partition for every period from the oldest
 *    row to the current one plus `premake` (copy.ts).
 * 3. Mirror every change to it with a row trigger, and copy the existing rows in batches.
 * 4. Swap the names in one short transaction (swap.ts); the old table stays as `<table>_old`
 *    (empty of writers, holding the same rows) unless `dropOld`.
 * Writers wait only while the trigger is created and during the swap; no write is lost, and
 * readers see every row throughout (the plain table until the swap, the partitioned one after).
 */

/** How `setupPartitioning` converts a plain table (`migrate: true` takes the defaults). */
export interface MigrationOptions {
  /** Rows per copy batch, each batch its own transaction. Default 5000. */
  readonly batchSize?: number;
  /** Drop `<table>_old` once the swap has committed. Default false: it is kept, for checking. */
  readonly dropOld?: boolean;
  /**
   * The longest wait for the lock of the two moments that hold writers (creating the trigger,
   * the swap), ms; writers queue behind the waiting request, so keep it short. Retried with
   * the manager's `lockRetries` and backoff. Default 500.
   */
  readonly lockTimeoutMs?: number;
  /** After each copy batch. Exceptions it throws are ignored. */
  readonly onProgress?: (progress: MigrationProgress) => void;
}

/** What the migration did, with the partitions' sizes after it. */
export interface MigrationReport {
  /** Rows read from the plain table by the copy, and those it wrote (the trigger wrote the rest). */
  readonly rowsRead: number;
  readonly rowsCopied: number;
  readonly batches: number;
  /** `<table>_old`, or undefined when it was dropped (`dropOld`). */
  readonly oldTable: string | undefined;
  /** Why `dropOld` could not drop it (the migration itself is done). */
  readonly dropError?: PartitioningError;
  /** How long writers could be held while the mirror trigger was created, lock wait included. */
  readonly triggerLockMs: number;
  /** The swap transaction, lock wait included: how long writers were held at most. */
  readonly swapMs: number;
  /** When the swap committed (its window is the `swapMs` before). */
  readonly swappedAt: Date;
  readonly swapAttempts: number;
  readonly durationMs: number;
  /** The partitions after the swap, each with its rows (estimate, after ANALYZE) and bytes. */
  readonly partitions: PartitionReport;
}

export const DEFAULT_BATCH_SIZE = 5000;
export const DEFAULT_SWAP_LOCK_TIMEOUT_MS = 500;
/** More partitions than this from one migration is a wrong interval, not a plan. */
const MAX_MIGRATION_PARTITIONS = 5000;

export function parseMigrationOptions(input: boolean | MigrationOptions): MigrationOptions {
  const options = input === true ? {} : input === false ? {} : input;
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1_000_000) {
    throw new ConfigError([
      {
        field: 'migrate.batchSize',
        message: `must be an integer from 1 to 1000000 (got ${String(batchSize)})`,
      },
    ]);
  }
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_SWAP_LOCK_TIMEOUT_MS;
  if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs < 1 || lockTimeoutMs > 600_000) {
    throw new ConfigError([
      {
        field: 'migrate.lockTimeoutMs',
        message: `must be an integer number of ms from 1 to 600000 (got ${String(lockTimeoutMs)})`,
      },
    ]);
  }
  return { ...options, batchSize, lockTimeoutMs };
}

/** The partitions covering [oldest row's period, max(now, newest row) + premake]. */
async function wantedPartitions(
  session: DdlSession,
  strategy: ResolvedRangeStrategy,
  keyType: 'timestamptz' | 'timestamp' | 'date',
  now: Date,
): Promise<WantedPartition[]> {
  const original = qualified(strategy.schema, strategy.table);
  const key = qualified(undefined, strategy.column);
  const r = record(
    (
      await session.client.query(
        `SELECT extract(epoch FROM min(${key}))::float8 AS lo, extract(epoch FROM max(${key}))::float8 AS hi FROM ${original}`,
      )
    ).rows[0],
  );
  // An empty table has no range: then only the current period and those ahead.
  const lo = r.lo === null || r.lo === undefined ? now.getTime() : Number(r.lo) * 1000;
  const hi = r.hi === null || r.hi === undefined ? now.getTime() : Number(r.hi) * 1000;
  const first = periodStart(new Date(Math.min(lo, now.getTime())), strategy.interval);
  const ahead = addPeriods(
    periodStart(now, strategy.interval),
    strategy.interval,
    strategy.premake,
  );
  const newest = periodStart(new Date(hi), strategy.interval);
  const last = new Date(Math.max(newest.getTime(), ahead.getTime()));
  const wanted: WantedPartition[] = [];
  for (let from = first; from <= last; from = addPeriods(from, strategy.interval, 1)) {
    if (wanted.length >= MAX_MIGRATION_PARTITIONS) {
      throw new PartitioningError(
        'unsupported-table',
        original,
        `${original} spans more than ${MAX_MIGRATION_PARTITIONS} ${strategy.interval} partitions ` +
          `(${first.toISOString()} to ${last.toISOString()}); choose a longer interval.`,
      );
    }
    const to = addPeriods(from, strategy.interval, 1);
    wanted.push({
      name: partitionName(strategy.table, periodSuffix(from, strategy.interval)),
      clause: rangeClause(from, to, keyType),
    });
  }
  if (strategy.default) {
    wanted.push({ name: partitionName(strategy.table, DEFAULT_SUFFIX), clause: 'DEFAULT' });
  }
  return wanted;
}

async function requireFree(
  session: DdlSession,
  schema: string,
  table: string,
  relations: readonly string[],
  fn: string,
): Promise<void> {
  const r = record(
    (
      await session.client.query(
        `SELECT ARRAY(SELECT c.relname::text FROM pg_catalog.pg_class c
                        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = $1 AND c.relname = ANY ($2::text[]) ORDER BY 1) AS rels,
                EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                          JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                         WHERE n.nspname = $1 AND p.proname = $3) AS fn`,
        [schema, [...relations], fn],
      )
    ).rows[0],
  );
  const taken = [...(Array.isArray(r.rels) ? r.rels.map(String) : []), ...(r.fn ? [fn] : [])];
  if (taken.length > 0) {
    const name = qualified(schema, table);
    throw new PartitioningError(
      'name-taken',
      name,
      `Migrating ${name} needs these names in schema ${qualified(undefined, schema)}, which are ` +
        `taken: ${taken.map((t) => qualified(undefined, t)).join(', ')}. A ..._pgpulse_new table or ` +
        '..._pgpulse_mirror function is what an interrupted migration left: drop it and run ' +
        'again; rename or drop the others.',
    );
  }
}

/**
 * Converts the plain table of `strategy` to range partitions online (see above). Runs on the
 * primary, on a session with `lock_timeout` set (PartitionManager does it), under the table's
 * partition advisory lock. Throws PartitioningError; before the swap, a failure removes what it
 * made and leaves the plain table as it was.
 */
export async function migrateToPartitions(
  session: DdlSession,
  strategy: ResolvedRangeStrategy,
  now: Date,
  options: MigrationOptions,
): Promise<{ readonly report: MigrationReport; readonly created: readonly WantedPartition[] }> {
  const started = performance.now();
  const { schema, table } = strategy;
  const name = qualified(schema, table);
  const source = await readSource(session.client, schema, table, strategy.column, {
    hasDefault: strategy.default,
  });
  const names = {
    table: partitionName(table, 'pgpulse_new'),
    mirrorFunction: partitionName(table, 'pgpulse_mirror'),
  };
  const oldName = partitionName(table, 'old');
  const briefLock = options.lockTimeoutMs ?? DEFAULT_SWAP_LOCK_TIMEOUT_MS;
  // What a run that could not clean up after itself left (its swap timed out behind a long
  // transaction, which also held up the cleanup): removed, and this run starts afresh.
  if (await hasLeftovers(session, source, names)) {
    const failure = await removeShadow(session, source, names);
    if (failure !== undefined) {
      throw new PartitioningError(
        'lock-timeout',
        name,
        `An earlier migration of ${name} left its trigger and ${qualified(schema, names.table)}, ` +
          `and removing them failed (${failure}); a long transaction on ${name} holds them up. ` +
          'Run again once it ends.',
      );
    }
  }
  const wanted = await wantedPartitions(session, strategy, source.timeKey, now);
  await requireFree(
    session,
    schema,
    table,
    [names.table, oldName, ...wanted.map((w) => w.name)],
    names.mirrorFunction,
  );

  let progress: MigrationProgress = { rowsRead: 0, rowsCopied: 0, batches: 0 };
  let triggerLockMs = 0;
  let swapped: { ms: number; attempts: number };
  let swappedAt: Date;
  try {
    await createShadow(session, source, strategy.column, names, wanted);
    const renames = await planRenames(session.client, schema, source.oid, names.table);
    triggerLockMs = await installMirror(session, source, names, briefLock);
    progress = await copyRows(
      session,
      source,
      names,
      options.batchSize ?? DEFAULT_BATCH_SIZE,
      (p) => {
        try {
          options.onProgress?.(p);
        } catch {
          // A failing callback must not stop the copy.
        }
      },
    );
    // Statistics before the swap, so the first queries on the partitions plan well.
    await session.client.query(`ANALYZE ${qualified(schema, names.table)}`);
    swapped = await swap(session, source, names, oldName, renames, briefLock);
    swappedAt = new Date();
  } catch (cause) {
    const leftover = session.maintenance.tainted
      ? 'the session broke'
      : await removeShadow(session, source, names);
    const failure = describeFailure(cause, name, name, 'migrate', session, undefined);
    const cleanup =
      leftover === undefined
        ? ` ${name} is unchanged; the partitioned copy and the trigger were removed.`
        : ` Removing the partitioned copy failed too (${leftover}); the trigger keeps mirroring ` +
          `into ${qualified(schema, names.table)} meanwhile. The next setup with migrate removes ` +
          `both first and starts again (or drop the triggers ${MIRROR_TRIGGER} and ` +
          `${TRUNCATE_TRIGGER} on ${name}, the function ${qualified(schema, names.mirrorFunction)}() ` +
          'and that table by hand).';
    throw new PartitioningError(
      failure.kind === 'ddl-failed' ? 'migration-failed' : failure.kind,
      name,
      `${failure.message}${cleanup}`,
      { cause },
    );
  }
  let oldTable: string | undefined = oldName;
  let dropError: PartitioningError | undefined;
  if (options.dropOld === true) {
    try {
      await withLockRetry(session, () =>
        inTransaction(session, [`DROP TABLE ${qualified(schema, oldName)} RESTRICT`]),
      );
      oldTable = undefined;
    } catch (cause) {
      // The migration itself is done: say so, rather than fail it.
      dropError = describeFailure(
        cause,
        name,
        qualified(schema, oldName),
        'drop (the migration is done; drop it by hand)',
        session,
        undefined,
      );
    }
  }
  const partitions = await partitionReport(session.client, schema, table);
  return {
    report: {
      rowsRead: progress.rowsRead,
      rowsCopied: progress.rowsCopied,
      batches: progress.batches,
      oldTable,
      ...(dropError === undefined ? {} : { dropError }),
      triggerLockMs,
      swapMs: swapped.ms,
      swappedAt,
      swapAttempts: swapped.attempts,
      durationMs: performance.now() - started,
      partitions,
    },
    created: wanted,
  };
}
