import { ConfigError, type ConfigIssue } from '../errors/index.js';
import type { SessionSettings } from '../maintenance/index.js';

/**
 * What every index statement of the index manager runs under: its time limits and the name
 * check of its input. The lock and the session are maintenance/'s.
 */

/** Time limits for index DDL: `lock_timeout` and `statement_timeout` while it runs. */
export interface MaintenanceOptions {
  /** lock_timeout while it runs, ms. Default: the session's. */
  readonly lockTimeoutMs?: number;
  /** statement_timeout while it runs, ms. Default: the session's. */
  readonly statementTimeoutMs?: number;
}

function timeoutOption(issues: ConfigIssue[], field: string, value: number | undefined) {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    issues.push({ field, message: `must be an integer number of ms >= 0 (got ${String(value)})` });
  }
  return value;
}

/**
 * The validated time limits as session settings (ConfigError naming `lockTimeoutMs` /
 * `statementTimeoutMs`); an option left out keeps the session's value.
 */
export function timeouts(options: MaintenanceOptions): SessionSettings {
  const issues: ConfigIssue[] = [];
  const lockTimeoutMs = timeoutOption(issues, 'lockTimeoutMs', options.lockTimeoutMs);
  const statementTimeoutMs = timeoutOption(
    issues,
    'statementTimeoutMs',
    options.statementTimeoutMs,
  );
  if (issues.length > 0) throw new ConfigError(issues);
  const settings: [string, string][] = [];
  if (lockTimeoutMs !== undefined)
    settings.push(['lock_timeout', String(Math.floor(lockTimeoutMs))]);
  if (statementTimeoutMs !== undefined) {
    settings.push(['statement_timeout', String(Math.floor(statementTimeoutMs))]);
  }
  return settings;
}

export const isName = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0 && !value.includes('\0');
