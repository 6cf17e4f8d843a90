import type { Cluster } from '@pgpulse/core';
import type { SandboxCluster } from '@pgpulse/sandbox';

/** Where statements ran, seen twice: by PostgreSQL and by pgpulse. */
export interface Observed<T> {
  readonly result: T;
  /** Sandbox nodes (`primary`, `replica1`...) whose pg_stat_statements moved for the table. */
  readonly postgres: string[];
  /** Roles of the cluster nodes whose statement counters moved (`cluster.stats()`). */
  readonly pgpulse: string[];
}

/**
 * Calls of statements whose text mentions `table`, per running sandbox node. The pattern is a
 * parameter, so this query's own text never matches it.
 */
export async function statementCalls(
  sandbox: SandboxCluster,
  table: string,
): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  await Promise.all(
    sandbox.all
      .filter((node) => node.running)
      .map(async (node) => {
        const rows = await sandbox.query<{ calls: string | null }>(
          node.name,
          "SELECT sum(calls)::int8 AS calls FROM pg_stat_statements WHERE query ILIKE '%' || $1 || '%'",
          [table],
        );
        calls.set(node.name, Number(rows[0]?.calls ?? 0));
      }),
  );
  return calls;
}

/** Runs `fn` and reports which nodes ran its statements on `table` (and which pgpulse counted). */
export async function observe<T>(
  sandbox: SandboxCluster,
  cluster: Cluster | undefined,
  table: string,
  fn: () => Promise<T>,
): Promise<Observed<T>> {
  const before = await statementCalls(sandbox, table);
  const counted = new Map(cluster?.stats().nodes.map((n) => [n.name, n.counters.queries]));
  const result = await fn();
  const after = await statementCalls(sandbox, table);
  const postgres = [...after]
    .filter(([name, calls]) => calls > (before.get(name) ?? 0))
    .map(([name]) => name)
    .sort();
  const pgpulse = (cluster?.stats().nodes ?? [])
    .filter((n) => n.counters.queries > (counted.get(n.name) ?? 0))
    .map((n) => n.role)
    .sort();
  return { result, postgres, pgpulse: [...new Set(pgpulse)] };
}

/** Statement calls on `table` that ran anywhere but the primary since `before`. */
export function onReplicas(postgres: readonly string[]): string[] {
  return postgres.filter((name) => name !== 'primary');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
