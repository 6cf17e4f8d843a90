/**
 * Where statements ran, for the TypeORM tests: the shared `observe` of
 * `@pgpulse/sandbox/testing`, bound to one table, in the shape these tests read.
 */
import type { Cluster } from '@pgpulse/core';
import type { SandboxCluster } from '@pgpulse/sandbox';
import * as testing from '@pgpulse/sandbox/testing';

/** Where statements ran, seen twice: by PostgreSQL and by pgpulse. */
export interface Observed<T> {
  readonly result: T;
  /** Sandbox nodes (`primary`, `replica1`...) whose pg_stat_statements moved for the table. */
  readonly postgres: string[];
  /** Roles of the cluster nodes whose statement counters moved (`cluster.stats()`). */
  readonly pgpulse: string[];
}

/** `ILIKE '%<pattern>%'` as a PostgreSQL regular expression: `%` any run, `_` any one character. */
function ilike(pattern: string): string {
  const parts = [...pattern].map((c) => (c === '%' ? '.*' : c === '_' ? '.' : testing.literal(c)));
  return `(?i)${parts.join('')}`;
}

/**
 * Runs `fn` and reports which nodes ran its statements matching `table` (an ILIKE pattern, e.g.
 * `user_account%FOR UPDATE`), and which nodes pgpulse counted.
 */
export async function observe<T>(
  sandbox: SandboxCluster,
  cluster: Cluster | undefined,
  table: string,
  fn: () => Promise<T>,
): Promise<Observed<T>> {
  const seen = await testing.observe(sandbox, fn, {
    statements: ilike(table),
    cluster,
  });
  return { result: seen.result, postgres: seen.nodes, pgpulse: seen.pgpulse };
}
