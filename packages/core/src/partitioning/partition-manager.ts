import { ConfigError, type ConfigIssue, PartitioningError } from '../errors/index.js';
import { type PartitionConnectionProvider, runMaintenance } from './maintenance-run.js';
import { type MigrationOptions, parseMigrationOptions } from './migration/migrate.js';
import type {
  MaintenanceReport,
  PartitionManagerStats,
  SetupOptions,
  SetupResult,
  TableMaintenance,
} from './results.js';
import {
  type PartitionStrategy,
  parsePartitionStrategies,
  parsePartitionStrategy,
  type ResolvedPartitionStrategy,
} from './strategy.js';
import type { Mode } from './table-work.js';

export type {
  DetachedPartition,
  MaintenanceReport,
  PartitionChange,
  PartitionManagerStats,
  SetupOptions,
  SetupResult,
  TableMaintenance,
} from './results.js';
export type { PartitionConnectionProvider };

/** The manager's clock, lock waits, loop interval and error callback. */
export interface PartitionManagerOptions {
  /** The clock; partition periods are computed from it in UTC. Default `() => new Date()`. */
  readonly now?: () => Date;
  /** Longest wait for any lock, per statement. Default 2000. */
  readonly lockTimeoutMs?: number;
  /** Further attempts after a lock timeout, with exponential backoff. Default 3. */
  readonly lockRetries?: number;
  /** First backoff delay; doubled each retry, jittered. Default 250. */
  readonly retryDelayMs?: number;
  /** Pause between the end of one loop run and the start of the next. Default 1 hour. */
  readonly intervalMs?: number;
  /** Every error of every run (loop or direct call). Exceptions it throws are ignored. */
  readonly onError?: (error: PartitioningError) => void;
}

const DEFAULTS = {
  lockTimeoutMs: 2_000,
  lockRetries: 3,
  retryDelayMs: 250,
  intervalMs: 3_600_000,
} as const;

/**
 * Keeps declaratively partitioned tables supplied with partitions, and trims them.
 *
 * Design: pgpulse never creates the parent table — that is the application's schema, owned by
 * its migrations. The parent must exist, created with `PARTITION BY RANGE|LIST|HASH (column)`,
 * or be a plain table that `setup(strategy, { migrate })` converts online (migration/); `setup()` checks in the catalog that its partitioning matches the
 * strategy (`pg_partitioned_table.partstrat` and the single key column, of a timestamp type for
 * interval ranges) and creates the partitions the strategy calls for. `maintain()` repeats that
 * check and, for range strategies, creates the current period's partition plus `premake` ahead
 * and retires (detaches, then drops unless `retentionMode: 'detach'`) partitions entirely older
 * than the retention. `list` and `hash` strategies get their listed / `modulus` partitions.
 *
 * Each table is worked on under a session advisory lock (`pg_try_advisory_lock`, key from
 * `partitionLockKey`): among many application instances one does the work and the others
 * report `skipped` / `locked`. Every statement waits at most `lockTimeoutMs` for a lock, with a
 * few retries, so maintenance never queues the application's queries behind it for long; the
 * loop (`start()`) runs on an unref'd timer, one run at a time, and reports errors through
 * `onError`. Bounds are formatted from Dates computed here, names are the catalog's or built
 * from suffixes computed here, all quoted (invariant 7).
 */
export class PartitionManager {
  readonly #connect: PartitionConnectionProvider;
  readonly #strategies: ResolvedPartitionStrategy[];
  readonly #now: () => Date;
  readonly #lockTimeoutMs: number;
  readonly #lockRetries: number;
  readonly #retryDelayMs: number;
  readonly #intervalMs: number;
  readonly #onError: ((error: PartitioningError) => void) | undefined;
  #inFlight: Promise<MaintenanceReport> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #looping = false;
  #runs = 0;
  #errors = 0;
  #skippedLocked = 0;
  #joined = 0;
  #lastReport: MaintenanceReport | undefined;

  /** Throws ConfigError (fields `partitioning.<n>.<key>`, `partitionManager.<option>`). */
  constructor(
    connect: PartitionConnectionProvider,
    strategies: readonly PartitionStrategy[] = [],
    options: PartitionManagerOptions = {},
  ) {
    this.#connect = connect;
    const issues: ConfigIssue[] = [];
    let parsed: ResolvedPartitionStrategy[] = [];
    try {
      parsed = parsePartitionStrategies(strategies);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      issues.push(...error.issues);
    }
    this.#strategies = parsed;
    const number = (key: keyof typeof DEFAULTS, min: number, max: number): number => {
      const value = options[key] ?? DEFAULTS[key];
      if (!Number.isInteger(value) || value < min || value > max) {
        issues.push({
          field: `partitionManager.${key}`,
          message: `must be an integer from ${min} to ${max} (got ${String(value)})`,
        });
      }
      return value;
    };
    this.#lockTimeoutMs = number('lockTimeoutMs', 1, 600_000);
    this.#lockRetries = number('lockRetries', 0, 20);
    this.#retryDelayMs = number('retryDelayMs', 0, 60_000);
    this.#intervalMs = number('intervalMs', 1_000, 2_147_483_647);
    if (issues.length > 0) throw new ConfigError(issues);
    this.#now = options.now ?? (() => new Date());
    this.#onError = options.onError;
  }

  /** The strategies managed, defaults applied. */
  get strategies(): readonly ResolvedPartitionStrategy[] {
    return this.#strategies;
  }

  /**
   * Validates `strategy` (ConfigError, fields `partitioning.<key>`), checks the table in the
   * catalog and creates the partitions it calls for; nothing is retired. Unless the table does
   * not fit the strategy, the strategy then joins the managed set (replacing one for the same
   * table) for `maintain()`. Throws the first PartitioningError when the table does not fit or
   * a partition could not be made; resolves `skipped` when another instance holds the table's
   * lock (it is doing the same work).
   */
  async setup(strategy: PartitionStrategy, options: SetupOptions = {}): Promise<SetupResult> {
    const resolved = parsePartitionStrategy(strategy);
    const migrate =
      options.migrate === undefined || options.migrate === false
        ? undefined
        : parseMigrationOptions(options.migrate);
    const [result] = await this.#run([resolved], 'setup', this.#now(), migrate);
    if (result === undefined) throw new Error('unreachable: one strategy, one result');
    const first = result.errors[0];
    // A table that does not fit is not taken into the loop; a transient failure is.
    if (first === undefined || first.retriable) {
      const index = this.#strategies.findIndex(
        (s) => s.schema === resolved.schema && s.table === resolved.table,
      );
      if (index >= 0) this.#strategies[index] = resolved;
      else this.#strategies.push(resolved);
    }
    if (first !== undefined) throw first;
    return result;
  }

  /**
   * One maintenance pass over every strategy. Never throws for a database problem: each table
   * reports `done`, `skipped` or `failed` with typed errors. A call while a pass is running
   * returns that pass.
   */
  maintain(): Promise<MaintenanceReport> {
    if (this.#inFlight !== undefined) {
      this.#joined++;
      return this.#inFlight;
    }
    const run = (async () => {
      const startedAt = this.#now();
      const tables = await this.#run([...this.#strategies], 'maintain', startedAt);
      const report: MaintenanceReport = { startedAt, finishedAt: this.#now(), tables };
      this.#lastReport = report;
      return report;
    })();
    this.#inFlight = run;
    const clear = () => {
      if (this.#inFlight === run) this.#inFlight = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /** Runs `maintain()` now and then every `intervalMs` after each run ends; idempotent. */
  start(): void {
    if (this.#looping) return;
    this.#looping = true;
    this.#schedule(0);
  }

  /** Stops the loop and waits for a run in progress to end. */
  async stop(): Promise<void> {
    this.#looping = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight?.catch(() => undefined);
  }

  stats(): PartitionManagerStats {
    return {
      runs: this.#runs,
      errors: this.#errors,
      skippedLocked: this.#skippedLocked,
      joined: this.#joined,
      looping: this.#looping,
      lastReport: this.#lastReport,
    };
  }

  #schedule(delay: number): void {
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.maintain()
        .catch((error: unknown) => {
          // maintain() reports rather than throws; this is a last line of defence.
          this.#report(
            error instanceof PartitioningError
              ? error
              : new PartitioningError(
                  'ddl-failed',
                  '(all)',
                  `Maintenance run failed: ${String(error)}`,
                  {
                    cause: error,
                  },
                ),
          );
        })
        .finally(() => {
          if (this.#looping) this.#schedule(this.#intervalMs);
        });
    }, delay);
    timer.unref();
    this.#timer = timer;
  }

  #report(error: PartitioningError): void {
    this.#errors++;
    try {
      this.#onError?.(error);
    } catch {
      // A failing callback must not stop maintenance.
    }
  }

  async #run(
    strategies: readonly ResolvedPartitionStrategy[],
    mode: Mode,
    at: Date,
    migrate?: MigrationOptions,
  ): Promise<TableMaintenance[]> {
    const settings = {
      lockTimeoutMs: this.#lockTimeoutMs,
      lockRetries: this.#lockRetries,
      retryDelayMs: this.#retryDelayMs,
    };
    return this.#finish(
      await runMaintenance(this.#connect, settings, strategies, mode, at, migrate),
      mode,
    );
  }

  #finish(results: TableMaintenance[], mode: Mode): TableMaintenance[] {
    if (mode === 'maintain') this.#runs++;
    for (const r of results) {
      if (r.status === 'skipped') this.#skippedLocked++;
      for (const e of r.errors) this.#report(e);
    }
    return results;
  }
}
