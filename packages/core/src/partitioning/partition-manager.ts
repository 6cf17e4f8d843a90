import { ConfigError, type ConfigIssue, PartitioningError } from '../errors/index.js';
import { type ConnectionLease, quoteIdent } from '../sql/index.js';
import {
  createPartition,
  type DdlSession,
  type DetachMethod,
  describeFailure,
  detachPartition,
  dropTable,
  type ParentRef,
} from './ddl.js';
import { type ParentInfo, readChildren, record, requirePartitionedParent } from './inspect.js';
import { DEFAULT_SUFFIX, type Plan, planHash, planList, planRange } from './plan.js';
import { partitionLockKey, partitionName, qualified } from './sql.js';
import {
  type PartitionStrategy,
  type PartitionType,
  parsePartitionStrategies,
  parsePartitionStrategy,
  type ResolvedPartitionStrategy,
} from './strategy.js';

/**
 * Keeps declaratively partitioned tables supplied with partitions, and trims them.
 *
 * Design: pgpulse never creates or converts the parent table — that is the application's
 * schema, owned by its migrations. The parent must exist, created with `PARTITION BY
 * RANGE|LIST|HASH (column)`; `setup()` checks in the catalog that its partitioning matches the
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

/** A connection to the primary for one maintenance run; `release(true)` destroys it. */
export type PartitionConnectionProvider = () => Promise<ConnectionLease>;

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

export interface PartitionChange {
  readonly name: string;
  /** `FOR VALUES ...` or `DEFAULT`. */
  readonly bound: string;
}

export interface DetachedPartition extends PartitionChange {
  /** `concurrent` (DETACH ... CONCURRENTLY or FINALIZE) or `blocking` (a DEFAULT partition exists). */
  readonly method: DetachMethod;
}

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
}

export type SetupResult = TableMaintenance;

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

const DEFAULTS = {
  lockTimeoutMs: 2_000,
  lockRetries: 3,
  retryDelayMs: 250,
  intervalMs: 3_600_000,
} as const;

type Mode = 'setup' | 'maintain';

/**
 * Keeps time-partitioned tables premade ahead and trimmed behind, on the primary, under an advisory
 * lock so one instance of the fleet does the work.
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
  async setup(strategy: PartitionStrategy): Promise<SetupResult> {
    const resolved = parsePartitionStrategy(strategy);
    const [result] = await this.#run([resolved], 'setup');
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
    at: Date = this.#now(),
  ): Promise<TableMaintenance[]> {
    const results: TableMaintenance[] = [];
    if (strategies.length === 0) return this.#finish(results, mode);
    let lease: ConnectionLease;
    try {
      lease = await this.#connect();
    } catch (cause) {
      for (const s of strategies) {
        results.push(
          failed(
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
      return this.#finish(results, mode);
    }
    const session: DdlSession = {
      client: lease.client,
      lockTimeoutMs: this.#lockTimeoutMs,
      lockRetries: this.#lockRetries,
      retryDelayMs: this.#retryDelayMs,
      sleep,
      broken: false,
    };
    let previousLockTimeout: string | undefined;
    try {
      const state = record(
        (
          await lease.client.query(
            "SELECT pg_catalog.pg_is_in_recovery() AS in_recovery, pg_catalog.current_setting('lock_timeout') AS lock_timeout",
          )
        ).rows[0],
      );
      if (state.in_recovery === true) {
        for (const s of strategies) {
          const table = qualified(s.schema, s.table);
          results.push(
            failed(
              s,
              new PartitioningError(
                'read-only',
                table,
                `Partition maintenance of ${table} needs the primary, but its connection leads to a standby (pg_is_in_recovery()); give the manager a primary connection.`,
              ),
            ),
          );
        }
        return this.#finish(results, mode);
      }
      await lease.client.query("SELECT pg_catalog.set_config('lock_timeout', $1, false)", [
        `${this.#lockTimeoutMs}ms`,
      ]);
      previousLockTimeout = String(state.lock_timeout);
      for (const s of strategies) results.push(await this.#table(session, s, mode, at));
    } catch (cause) {
      session.broken = true;
      for (const s of strategies.slice(results.length)) {
        results.push(
          failed(
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
    } finally {
      if (previousLockTimeout !== undefined && !session.broken) {
        try {
          await lease.client.query("SELECT pg_catalog.set_config('lock_timeout', $1, false)", [
            previousLockTimeout,
          ]);
        } catch {
          session.broken = true;
        }
      }
      lease.release(session.broken);
    }
    return this.#finish(results, mode);
  }

  #finish(results: TableMaintenance[], mode: Mode): TableMaintenance[] {
    if (mode === 'maintain') this.#runs++;
    for (const r of results) {
      if (r.status === 'skipped') this.#skippedLocked++;
      for (const e of r.errors) this.#report(e);
    }
    return results;
  }

  /** One table under its advisory lock. */
  async #table(
    session: DdlSession,
    strategy: ResolvedPartitionStrategy,
    mode: Mode,
    at: Date,
  ): Promise<TableMaintenance> {
    const { client } = session;
    const name = qualified(strategy.schema, strategy.table);
    const key = partitionLockKey(strategy.schema, strategy.table).toString();
    let locked: boolean;
    try {
      const result = await client.query(
        'SELECT pg_catalog.pg_try_advisory_lock($1::bigint) AS locked',
        [key],
      );
      locked = record(result.rows[0]).locked === true;
    } catch (cause) {
      return failed(strategy, describeFailure(cause, name, name, 'lock', session, undefined));
    }
    if (!locked) {
      return { ...empty(strategy), status: 'skipped', reason: 'locked' };
    }
    try {
      return await this.#work(session, strategy, mode, at);
    } catch (cause) {
      return failed(strategy, describeFailure(cause, name, name, 'maintain', session, undefined));
    } finally {
      try {
        await client.query('SELECT pg_catalog.pg_advisory_unlock($1::bigint)', [key]);
      } catch {
        // The lock dies with the session: destroy it rather than return it to a pool.
        session.broken = true;
      }
    }
  }

  async #work(
    session: DdlSession,
    strategy: ResolvedPartitionStrategy,
    mode: Mode,
    at: Date,
  ): Promise<TableMaintenance> {
    const tableName = qualified(strategy.schema, strategy.table);
    const parent = await requirePartitionedParent(
      session.client,
      strategy.schema,
      strategy.table,
      `PARTITION BY ${strategy.type.toUpperCase()} (${quoteIdent(strategy.column)})`,
    );
    const timeKey = verify(parent, strategy, tableName);
    const children = await readChildren(session.client, parent);
    let plan: Plan;
    switch (strategy.type) {
      case 'range':
        if (timeKey === undefined) throw new Error('unreachable: verify() checked the key type');
        plan = planRange(strategy, timeKey, children, at, { retention: mode === 'maintain' });
        break;
      case 'list':
        plan = planList(strategy, children);
        break;
      case 'hash':
        plan = planHash(strategy, children);
        break;
    }

    const created: PartitionChange[] = [];
    const detached: DetachedPartition[] = [];
    const dropped: string[] = [];
    const errors: PartitioningError[] = [];
    const ref: ParentRef = parent;
    let defaultPartition = parent.defaultPartition;
    const child = (partition: string) => qualified(strategy.schema, partition);

    if (plan.mismatches.length > 0 && strategy.type === 'hash') {
      errors.push(
        new PartitioningError(
          'strategy-mismatch',
          tableName,
          `${tableName} has hash partitions of another modulus than the strategy's ${strategy.modulus} (${plan.mismatches.map(child).join(', ')}); set modulus to match the table.`,
        ),
      );
    }
    for (const conflict of plan.conflicts) {
      errors.push(
        new PartitioningError(
          'overlap',
          tableName,
          `Partition ${child(conflict.name)} (${conflict.clause}) was not created: it overlaps ${conflict.overlaps.map((o) => child(o)).join(', ')}, which pgpulse did not make. Align or remove those partitions.`,
          { partition: child(conflict.name) },
        ),
      );
    }
    for (const wanted of plan.create) {
      try {
        await createPartition(session, ref, wanted.name, wanted.clause);
        created.push({ name: wanted.name, bound: wanted.clause });
      } catch (cause) {
        errors.push(
          describeFailure(
            cause,
            tableName,
            child(wanted.name),
            'create partition',
            session,
            defaultPartition,
          ),
        );
      }
    }
    if (strategy.default && defaultPartition === undefined) {
      const name = partitionName(strategy.table, DEFAULT_SUFFIX);
      try {
        await createPartition(session, ref, name, 'DEFAULT');
        created.push({ name, bound: 'DEFAULT' });
        defaultPartition = name;
      } catch (cause) {
        errors.push(
          describeFailure(
            cause,
            tableName,
            child(name),
            'create the DEFAULT partition',
            session,
            undefined,
          ),
        );
      }
    }
    for (const old of plan.retire) {
      try {
        const method = await detachPartition(session, ref, old, defaultPartition !== undefined);
        detached.push({ name: old.name, bound: old.bound, method });
      } catch (cause) {
        errors.push(
          describeFailure(
            cause,
            tableName,
            child(old.name),
            'detach partition',
            session,
            defaultPartition,
          ),
        );
        continue;
      }
      if (strategy.type !== 'range' || strategy.retentionMode !== 'drop') continue;
      try {
        await dropTable(session, old.schema, old.name);
        dropped.push(old.name);
      } catch (cause) {
        errors.push(
          describeFailure(
            cause,
            tableName,
            child(old.name),
            'drop the detached partition (it is detached, drop it by hand)',
            session,
            undefined,
          ),
        );
      }
    }
    return {
      ...empty(strategy),
      status: errors.length > 0 ? 'failed' : 'done',
      created,
      detached,
      dropped,
      errors,
    };
  }
}

/** Checks the catalog's partitioning against the strategy; returns the time key of a range. */
function verify(
  parent: ParentInfo & { readonly strategy: PartitionType },
  strategy: ResolvedPartitionStrategy,
  table: string,
) {
  const mismatch = (message: string) => new PartitioningError('strategy-mismatch', table, message);
  if (parent.strategy !== strategy.type) {
    throw mismatch(
      `${table} is partitioned by ${parent.strategy.toUpperCase()}, but the strategy says type '${strategy.type}'; make them agree.`,
    );
  }
  if (parent.keyCount !== 1) {
    throw mismatch(
      `${table} is partitioned by ${parent.keyCount} columns; pgpulse manages single-column partition keys only.`,
    );
  }
  if (parent.keyColumn === undefined) {
    throw mismatch(
      `${table} is partitioned by an expression; pgpulse manages partition keys that are a plain column.`,
    );
  }
  if (parent.keyColumn !== strategy.column) {
    throw mismatch(
      `${table} is partitioned by column ${quoteIdent(parent.keyColumn)}, but the strategy says column ${quoteIdent(strategy.column)}.`,
    );
  }
  if (strategy.type !== 'range') return undefined;
  if (parent.timeKey === undefined) {
    throw mismatch(
      `Range partitioning by interval needs a timestamptz, timestamp or date key; ${quoteIdent(parent.keyColumn)} of ${table} is ${parent.keyType ?? 'of another type'}.`,
    );
  }
  if (strategy.interval === 'hourly' && parent.timeKey === 'date') {
    throw mismatch(
      `Hourly partitions need a timestamptz or timestamp key; ${quoteIdent(parent.keyColumn)} of ${table} is a date. Use interval 'daily' or longer.`,
    );
  }
  return parent.timeKey;
}

function empty(strategy: ResolvedPartitionStrategy): TableMaintenance {
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

function failed(strategy: ResolvedPartitionStrategy, error: PartitioningError): TableMaintenance {
  return { ...empty(strategy), status: 'failed', errors: [error] };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}
