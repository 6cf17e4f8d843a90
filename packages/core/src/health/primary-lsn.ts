import type pg from 'pg';
import { untraced } from '../tracing/index.js';
import { type Lsn, parseLsn } from './lsn.js';

/** What the position query needs of the primary (topology's `ClusterNode` is one). */
export interface PrimaryQueryNode {
  readonly health: { readonly up: boolean };
  queryOnce<R extends pg.QueryResultRow>(sql: string): Promise<R[]>;
}

/**
 * The primary's WAL insert position now, or undefined when it cannot be had within
 * `timeoutMs` (or the primary is down): a consistency token then says "the primary's position
 * at import" instead of failing during a crash. One query of its own, never traced.
 */
export async function currentPrimaryLsn(
  primary: PrimaryQueryNode | undefined,
  timeoutMs: number,
): Promise<Lsn | undefined> {
  if (!primary?.health.up) return undefined;
  const ask = untraced(async () => {
    const rows = await primary.queryOnce<{ lsn: string }>(
      'SELECT pg_current_wal_insert_lsn()::text AS lsn',
    );
    return parseLsn(rows[0]?.lsn);
  });
  ask.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, undefined);
  });
  try {
    return await Promise.race([ask, late]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
