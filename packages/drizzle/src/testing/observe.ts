/**
 * Which PostgreSQL server ran a statement, as PostgreSQL itself saw it: pg_stat_statements
 * (loaded on every sandbox node) counts each statement per server. Only statements touching the
 * tests' `dz_` tables are looked at, so health probes and catalog reads do not blur the picture.
 */
import type { SandboxCluster } from '@pgpulse/sandbox';

/** Statement texts (normalized by pg_stat_statements) that ran, per sandbox node name. */
export type Ran = Record<string, string[]>;

export interface Observed<T> {
  readonly value: T;
  /** Names of the sandbox nodes that ran at least one statement, sorted. */
  readonly nodes: string[];
  readonly ran: Ran;
}

export interface ObservedFailure {
  readonly error: unknown;
  readonly nodes: string[];
  readonly ran: Ran;
}

const SNAPSHOT = `
  SELECT query, sum(calls)::int AS calls FROM pg_stat_statements
  WHERE strpos(query, 'dz_') > 0 AND strpos(query, 'pg_stat_statements') = 0
  GROUP BY query`;

type Snapshot = Map<string, Map<string, number>>;

async function snapshot(sandbox: SandboxCluster): Promise<Snapshot> {
  const running = sandbox.all.filter((node) => node.running);
  const entries = await Promise.all(
    running.map(async (node) => {
      const rows = await sandbox.query<{ query: string; calls: number }>(node.name, SNAPSHOT);
      return [node.name, new Map(rows.map((r) => [r.query, r.calls]))] as const;
    }),
  );
  return new Map(entries);
}

function diff(before: Snapshot, after: Snapshot): { nodes: string[]; ran: Ran } {
  const ran: Ran = {};
  for (const [node, counts] of after) {
    const earlier = before.get(node);
    for (const [query, calls] of counts) {
      if (calls <= (earlier?.get(query) ?? 0)) continue;
      const list = ran[node] ?? [];
      list.push(query);
      ran[node] = list;
    }
  }
  return { nodes: Object.keys(ran).sort(), ran };
}

/** Runs `fn` and reports which nodes ran its statements; rethrows if `fn` fails. */
export async function observe<T>(
  sandbox: SandboxCluster,
  fn: () => Promise<T>,
): Promise<Observed<T>> {
  const before = await snapshot(sandbox);
  const value = await fn();
  return { value, ...diff(before, await snapshot(sandbox)) };
}

/** Runs `fn`, which must fail, and reports the error and which nodes ran statements. */
export async function observeFailure(
  sandbox: SandboxCluster,
  fn: () => Promise<unknown>,
): Promise<ObservedFailure> {
  const before = await snapshot(sandbox);
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  if (error === undefined) throw new Error('expected the statement to fail, but it succeeded');
  return { error, ...diff(before, await snapshot(sandbox)) };
}

/** The sandbox node listening on `port` (from `inet_server_port()`). */
export function nodeAt(sandbox: SandboxCluster, port: number | string): string {
  const node = sandbox.all.find((n) => n.port === Number(port));
  if (!node) throw new Error(`no sandbox node listens on port ${port}`);
  return node.name;
}

/** The message of an error and of its causes (drizzle wraps driver errors in DrizzleQueryError). */
export function messages(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  while (current instanceof Error) {
    parts.push(current.message);
    current = current.cause;
  }
  return parts.join(' <- ');
}
