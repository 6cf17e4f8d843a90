import type { ConnectionOptions } from 'node:tls';
import type pg from 'pg';
import type { PasswordSource, ResetOnRelease, ResolvedPoolConfig } from '../config/index.js';
import { ConfigError, type ConfigIssue } from '../errors/index.js';
import type { Clock } from './clock.js';

/**
 * The pool settings of the config (see ResolvedPoolConfig for what each means), minus the
 * pooling mode, which is the routing pool's business, plus what only the pool needs.
 */
export type NodePoolOptions = Omit<
  ResolvedPoolConfig,
  | 'pooling'
  | 'resetOnRelease'
  | 'maxUses'
  | 'exitOnIdle'
  | 'statementTimeoutMs'
  | 'warm'
  | 'binary'
  | 'pipeline'
> & {
  /** Binary results on every connection (pg's `binary`); default false. */
  readonly binary?: boolean;
  /** Every connection pipelines statements (pg's `pipeline`); default false. */
  readonly pipeline?: boolean;
  /** Default 'none'. */
  readonly resetOnRelease?: ResetOnRelease;
  readonly applicationName?: string;
  /** Close a connection once it served this many checkouts; 0 or absent = never. */
  readonly maxUses?: number;
  /**
   * false keeps idle connections' sockets referenced, so they hold the process open until the
   * idle timeout closes them (pg.Pool's default); true (the default here) lets it exit.
   */
  readonly exitOnIdle?: boolean;
  /** Open minSize connections ahead of demand (see PoolOptions.warm); default true. */
  readonly warm?: boolean;
  /** Source of randomness in [0, 1) for the recycle jitter (tests). */
  readonly random?: () => number;
  /** Time and timers (tests pass a clock they move by hand). */
  readonly clock?: Clock;
  /**
   * The class of every connection (pg.Pool's `Client` option): pg.Client or a subclass of it,
   * since the pool reads the protocol stream of each connection.
   */
  readonly Client?: typeof pg.Client;
};

export interface ConnectionConfig {
  readonly host: string;
  readonly port: number;
  readonly database?: string;
  readonly user?: string;
  /** A string, or a closure returning it (kept out of every object graph; see credentials.ts). */
  readonly password?: string | PasswordSource;
  readonly ssl?: boolean | ConnectionOptions;
  /** libpq `options` (`-c statement_timeout=5s ...`), sent at connect. */
  readonly options?: string;
  /** This node's own application_name, over NodePoolOptions.applicationName. */
  readonly application_name?: string;
}

/** Throws a ConfigError naming every option NodePool cannot work with. */
export function validateNodePoolOptions(options: NodePoolOptions): void {
  const issues: ConfigIssue[] = [];
  const check = (ok: boolean, field: string, message: string): void => {
    if (!ok) issues.push({ field: `pool.${field}`, message });
  };
  const int = (v: number, min: number): boolean => Number.isInteger(v) && v >= min;
  const ms = (v: number, min: number): boolean => Number.isFinite(v) && v >= min;
  check(int(options.maxSize, 1), 'maxSize', `must be a whole number >= 1 (got ${options.maxSize})`);
  check(
    int(options.minSize, 0) && options.minSize <= options.maxSize,
    'minSize',
    `must be a whole number from 0 to pool.maxSize (${options.maxSize}) (got ${options.minSize})`,
  );
  check(
    int(options.overflow, 0),
    'overflow',
    `must be a whole number >= 0 (got ${options.overflow})`,
  );
  check(
    ms(options.acquireTimeoutMs, 1),
    'acquireTimeoutMs',
    `must be a number of milliseconds > 0 (got ${options.acquireTimeoutMs})`,
  );
  check(
    ms(options.connectTimeoutMs, 1),
    'connectTimeoutMs',
    `must be a number of milliseconds > 0; without a limit a silent node holds pool slots forever (got ${options.connectTimeoutMs})`,
  );
  check(
    ms(options.idleTimeoutMs, 0),
    'idleTimeoutMs',
    `must be a number of milliseconds >= 0, 0 for never (got ${options.idleTimeoutMs})`,
  );
  check(
    ms(options.prePingAfterIdleMs, 0),
    'prePingAfterIdleMs',
    `must be a number of milliseconds >= 0 (got ${options.prePingAfterIdleMs})`,
  );
  check(
    options.recycleSeconds === null || ms(options.recycleSeconds, 0),
    'recycleSeconds',
    `must be a number of seconds >= 0, or 0 / null for never (got ${options.recycleSeconds})`,
  );
  check(
    ms(options.recycleJitter, 0) && options.recycleJitter <= 1,
    'recycleJitter',
    `must be a fraction from 0 to 1 (got ${options.recycleJitter})`,
  );
  if (issues.length > 0) throw new ConfigError(issues);
}
