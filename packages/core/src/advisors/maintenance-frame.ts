import { ConfigError, type ConfigIssue } from '../errors/index.js';
import { advisoryUnlock, type Session, type Timeouts } from './session.js';

/**
 * What every index statement of the index manager runs under: its time limits, the name check
 * of its input, and the release of the table's advisory lock.
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

export function timeouts(options: MaintenanceOptions): Timeouts {
  const issues: ConfigIssue[] = [];
  const lockTimeoutMs = timeoutOption(issues, 'lockTimeoutMs', options.lockTimeoutMs);
  const statementTimeoutMs = timeoutOption(
    issues,
    'statementTimeoutMs',
    options.statementTimeoutMs,
  );
  if (issues.length > 0) throw new ConfigError(issues);
  return { lockTimeoutMs, statementTimeoutMs };
}

export const isName = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0 && !value.includes('\0');

export async function release(session: Session, key: bigint): Promise<void> {
  try {
    await advisoryUnlock(session, key);
  } catch {
    // A broken connection releases its locks as it closes; never reuse it.
    session.taint();
  }
}
