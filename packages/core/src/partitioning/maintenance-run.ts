import { PartitioningError } from '../errors/index.js';
import {
  onLease,
  type UnderLock,
  underAdvisoryLock,
  withSessionSettings,
} from '../maintenance/index.js';
import type { ConnectionLease } from '../sql/index.js';
import { type DdlSession, describeFailure } from './ddl.js';
import { record } from './inspect.js';
import type { MigrationOptions } from './migration/migrate.js';
import { emptyResult, failedResult, type TableMaintenance } from './results.js';
import { partitionLockKey, qualified } from './sql.js';
import type { ResolvedPartitionStrategy } from './strategy.js';
import { type Mode, migrateIfPlain, workOnTable } from './table-work.js';

// One maintenance run: one connection to the primary, each table under its advisory lock.

/** A connection to the primary for one maintenance run; `release(true)` destroys it. */
export type PartitionConnectionProvider = () => Promise<ConnectionLease>;

/** How long a run's statements wait for a lock, and how often they try again. */
export interface LockSettings {
  readonly lockTimeoutMs: number;
  readonly lockRetries: number;
  readonly retryDelayMs: number;
}

/**
 * Works on every strategy's table on one connection from `connect`, in order; a failure is
 * reported in that table's result (and the tables after it), never thrown.
 */
export async function runMaintenance(
  connect: PartitionConnectionProvider,
  settings: LockSettings,
  strategies: readonly ResolvedPartitionStrategy[],
  mode: Mode,
  at: Date,
  migrate?: MigrationOptions,
): Promise<TableMaintenance[]> {
  const results: TableMaintenance[] = [];
  if (strategies.length === 0) return results;
  let lease: ConnectionLease;
  try {
    lease = await connect();
  } catch (cause) {
    for (const s of strategies) {
      results.push(
        failedResult(
          s,
          new PartitioningError(
            'connect-failed',
            qualified(s.schema, s.table),
            `No connection for partition maintenance: ${cause instanceof Error ? cause.message : String(cause)}`,
            { cause },
          ),
        ),
      );
    }
    return results;
  }
  return onLease(lease, async (maintenance) => {
    const session: DdlSession = {
      client: lease.client,
      maintenance,
      lockTimeoutMs: settings.lockTimeoutMs,
      lockRetries: settings.lockRetries,
      retryDelayMs: settings.retryDelayMs,
      sleep,
    };
    try {
      const state = record(
        (await lease.client.query('SELECT pg_catalog.pg_is_in_recovery() AS in_recovery')).rows[0],
      );
      if (state.in_recovery === true) {
        for (const s of strategies) {
          const table = qualified(s.schema, s.table);
          results.push(
            failedResult(
              s,
              new PartitioningError(
                'read-only',
                table,
                `Partition maintenance of ${table} needs the primary, but its connection leads to a standby (pg_is_in_recovery()); give the manager a primary connection.`,
              ),
            ),
          );
        }
        return results;
      }
      // lock_timeout for the whole run, put back at its end (skipped once the session broke).
      await withSessionSettings(
        maintenance,
        [['lock_timeout', `${settings.lockTimeoutMs}ms`]],
        async () => {
          try {
            for (const s of strategies) {
              results.push(await maintainTable(session, s, mode, at, migrate));
            }
          } catch (cause) {
            maintenance.taint();
            throw cause;
          }
        },
      );
    } catch (cause) {
      maintenance.taint();
      for (const s of strategies.slice(results.length)) {
        results.push(
          failedResult(
            s,
            describeFailure(
              cause,
              qualified(s.schema, s.table),
              qualified(s.schema, s.table),
              'maintain',
              session,
              undefined,
            ),
          ),
        );
      }
    }
    return results;
  });
}

/** One table under its advisory lock. */
async function maintainTable(
  session: DdlSession,
  strategy: ResolvedPartitionStrategy,
  mode: Mode,
  at: Date,
  migrate: MigrationOptions | undefined,
): Promise<TableMaintenance> {
  const name = qualified(strategy.schema, strategy.table);
  let held: UnderLock<TableMaintenance>;
  try {
    // The body reports its own failures, so a rejection here is the lock statement's.
    held = await underAdvisoryLock(
      session.maintenance,
      partitionLockKey(strategy.schema, strategy.table),
      async () => {
        try {
          const migration =
            migrate === undefined
              ? undefined
              : await migrateIfPlain(session, strategy, at, migrate);
          const result = await workOnTable(session, strategy, mode, at);
          if (migration === undefined) return result;
          return {
            ...result,
            created: [
              ...migration.created.map((p) => ({ name: p.name, bound: p.clause })),
              ...result.created,
            ],
            migration: migration.report,
          };
        } catch (cause) {
          return failedResult(
            strategy,
            describeFailure(cause, name, name, 'maintain', session, undefined),
          );
        }
      },
    );
  } catch (cause) {
    return failedResult(strategy, describeFailure(cause, name, name, 'lock', session, undefined));
  }
  if (!held.locked) return { ...emptyResult(strategy), status: 'skipped', reason: 'locked' };
  return held.value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}
