/**
 * Which PostgreSQL server ran a statement, as PostgreSQL itself saw it: pg_stat_statements
 * (loaded on every sandbox node) counts each statement per server. Only statements whose text
 * matches the caller's pattern are looked at (the tests' own tables), so health probes and
 * catalog reads do not blur the picture. Optionally also what pgpulse counted, from
 * `cluster.stats()` deltas, so a test can hold the two views against each other.
 */
import type { SandboxCluster } from '../cluster.js';

/**
 * What `observe` reads from a pgpulse cluster: its per-node statement counters. A structural
 * type, so the sandbox does not depend on @pgpulse/core (core's `Cluster` satisfies it).
 */
export interface CountingCluster {
  stats(): {
    readonly nodes: readonly {
      readonly name: string;
      readonly role: string;
      readonly counters: { readonly queries: number };
    }[];
  };
}

/**
 * Which statements observe() and observeFailure() count, and the pgpulse cluster whose
 * counters they also read.
 */
export interface ObserveOptions {
  /**
   * A PostgreSQL regular expression (`~`; start it with `(?i)` to ignore case) that a
   * statement's text must match to count, e.g. the test's table names.
   */
  readonly statements: string;
  /** Also report the nodes whose pgpulse statement counter moved. */
  readonly cluster?: CountingCluster | undefined;
}

/** Where the statements of one call ran. */
export interface Observation {
  /** Sandbox node names (`primary`, `replica1`...) that ran a matching statement, sorted. */
  readonly nodes: string[];
  /** Matching statement texts (as pg_stat_statements normalized them) that ran, per node. */
  readonly ran: Record<string, string[]>;
  /** How many matching statements ran, per running node observed (0 included). */
  readonly calls: Record<string, number>;
  /** Roles of the cluster nodes whose pgpulse counter moved, sorted, once each ([] without a cluster). */
  readonly pgpulse: string[];
}

/** What observe() returns: where the matching statements ran, and what `fn` resolved to. */
export interface Observed<T> extends Observation {
  /** What `fn` resolved to. */
  readonly result: T;
}

/** What observeFailure() returns: where the matching statements ran, and how `fn` failed. */
export interface ObservedFailure extends Observation {
  /** What `fn` threw or rejected with. */
  readonly error: unknown;
}

const SNAPSHOT = `
  SELECT query, sum(calls)::int8 AS calls FROM pg_stat_statements
  WHERE query ~ $1 AND strpos(query, 'pg_stat_statements') = 0
  GROUP BY query`;

interface Snapshot {
  readonly postgres: Map<string, Map<string, number>>;
  readonly pgpulse: Map<string, number>;
}

async function snapshot(sandbox: SandboxCluster, options: ObserveOptions): Promise<Snapshot> {
  // The pattern is a parameter, so this query's own text never matches it.
  const entries = await Promise.all(
    sandbox.all
      .filter((node) => node.running)
      .map(async (node) => {
        const rows = await sandbox.query<{ query: string; calls: string }>(node.name, SNAPSHOT, [
          options.statements,
        ]);
        return [node.name, new Map(rows.map((r) => [r.query, Number(r.calls)]))] as const;
      }),
  );
  const counted = options.cluster?.stats().nodes ?? [];
  return {
    postgres: new Map(entries),
    pgpulse: new Map(counted.map((n) => [n.name, n.counters.queries])),
  };
}

function diff(before: Snapshot, after: Snapshot, options: ObserveOptions): Observation {
  const ran: Record<string, string[]> = {};
  const calls: Record<string, number> = {};
  for (const [node, counts] of after.postgres) {
    const earlier = before.postgres.get(node);
    calls[node] = 0;
    for (const [query, n] of counts) {
      const delta = n - (earlier?.get(query) ?? 0);
      if (delta <= 0) continue;
      calls[node] += delta;
      const list = ran[node] ?? [];
      list.push(query);
      ran[node] = list;
    }
  }
  const pgpulse = (options.cluster?.stats().nodes ?? [])
    .filter((n) => n.counters.queries > (before.pgpulse.get(n.name) ?? 0))
    .map((n) => n.role);
  return { nodes: Object.keys(ran).sort(), ran, calls, pgpulse: [...new Set(pgpulse)].sort() };
}

/** Runs `fn` and reports which nodes ran its matching statements; rethrows if `fn` fails. */
export async function observe<T>(
  sandbox: SandboxCluster,
  fn: () => Promise<T>,
  options: ObserveOptions,
): Promise<Observed<T>> {
  const before = await snapshot(sandbox, options);
  const result = await fn();
  return { result, ...diff(before, await snapshot(sandbox, options), options) };
}

/** Runs `fn`, which must fail, and reports the error and which nodes ran matching statements. */
export async function observeFailure(
  sandbox: SandboxCluster,
  fn: () => Promise<unknown>,
  options: ObserveOptions,
): Promise<ObservedFailure> {
  const before = await snapshot(sandbox, options);
  let failed = false;
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    failed = true;
    error = err;
  }
  if (!failed) throw new Error('expected the call to fail, but it succeeded');
  return { error, ...diff(before, await snapshot(sandbox, options), options) };
}

/** The sandbox node listening on `port` (from `inet_server_port()`). */
export function nodeAt(sandbox: SandboxCluster, port: number | string): string {
  const node = sandbox.all.find((n) => n.port === Number(port));
  if (!node) throw new Error(`no sandbox node listens on port ${port}`);
  return node.name;
}

/** Escapes `text` for use as a literal inside an `ObserveOptions.statements` pattern. */
export function literal(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}
