import type { PgPulseError } from '../errors/index.js';
import type { QueryClient } from '../sql/index.js';
import type { BloatedIndex } from './bloat.js';
import { type RebuildStatus, rebuildIndex } from './index-maintenance.js';
import type { MaintenanceOptions } from './maintenance-frame.js';
import { asRow, num } from './sql.js';

/**
 * Rebuilding what `adviseIndexes` reported as bloated: one REINDEX INDEX CONCURRENTLY per
 * index, through `rebuildIndex` (catalog lookup, the table's advisory lock, timeouts, cleanup of
 * a failed rebuild's `_ccnew` copy), with the index's size read before and after so the caller
 * sees the space given back.
 */

export interface RebuildBloatedOptions extends MaintenanceOptions {
  /** Check each index and return the statements, without rebuilding. Default false. */
  readonly dryRun?: boolean;
}

/** What `rebuildBloatedIndexes` did with one bloated index. */
export interface BloatRebuildResult {
  /** The index as `adviseIndexes` reported it (its estimate, the statement). */
  readonly index: BloatedIndex;
  /** `rebuildIndex`'s status, or 'dry-run'. */
  readonly status: RebuildStatus | 'dry-run';
  readonly sql: string;
  /** `pg_relation_size` just before the rebuild; undefined when the index is gone. */
  readonly sizeBytesBefore: number | undefined;
  /** `pg_relation_size` after it (after a dry run: the same as before). */
  readonly sizeBytesAfter: number | undefined;
  readonly reason?: string;
  readonly error?: PgPulseError;
}

async function indexSize(
  client: QueryClient,
  schema: string,
  name: string,
): Promise<number | undefined> {
  const result = await client.query(
    `SELECT pg_catalog.pg_relation_size(c.oid)::float8 AS bytes
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'i'`,
    [schema, name],
  );
  return num(asRow(result.rows[0]).bytes);
}

/**
 * REINDEX INDEX CONCURRENTLY for each of `bloated` (the `bloated` list of an `adviseIndexes`
 * report), one after the other, in the order given. Never throws for one index's failure: each
 * result says 'rebuilt', 'locked' (another instance holds the table's advisory lock), 'missing'
 * (dropped since the report) or 'failed' with the typed error. `client` as for `rebuildIndex`:
 * one primary connection outside a transaction, or a pool.
 */
export async function rebuildBloatedIndexes(
  client: QueryClient,
  bloated: readonly BloatedIndex[],
  options: RebuildBloatedOptions = {},
): Promise<BloatRebuildResult[]> {
  const { dryRun = false, ...limits } = options;
  const results: BloatRebuildResult[] = [];
  for (const index of bloated) {
    const before = await indexSize(client, index.schema, index.name);
    if (dryRun) {
      results.push({
        index,
        status: before === undefined ? 'missing' : 'dry-run',
        sql: index.sql,
        sizeBytesBefore: before,
        sizeBytesAfter: before,
      });
      continue;
    }
    const outcome = await rebuildIndex(client, index.schema, index.name, limits);
    results.push({
      index,
      status: outcome.status,
      sql: outcome.sql ?? index.sql,
      sizeBytesBefore: before,
      sizeBytesAfter: await indexSize(client, index.schema, index.name),
      ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
    });
  }
  return results;
}
