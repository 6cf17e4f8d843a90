/**
 * Which PostgreSQL server ran a statement, for the drizzle tests: the shared `observe` of
 * `@pgpulse/sandbox/testing`, bound to the tests' `dz_` tables, in the shape these tests read.
 */
import type { SandboxCluster } from '@pgpulse/sandbox';
import * as testing from '@pgpulse/sandbox/testing';

export { nodeAt } from '@pgpulse/sandbox/testing';

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

const TABLES = { statements: 'dz_' };

/** Runs `fn` and reports which nodes ran its statements; rethrows if `fn` fails. */
export async function observe<T>(
  sandbox: SandboxCluster,
  fn: () => Promise<T>,
): Promise<Observed<T>> {
  const { result, nodes, ran } = await testing.observe(sandbox, fn, TABLES);
  return { value: result, nodes, ran };
}

/** Runs `fn`, which must fail, and reports the error and which nodes ran statements. */
export async function observeFailure(
  sandbox: SandboxCluster,
  fn: () => Promise<unknown>,
): Promise<ObservedFailure> {
  const { error, nodes, ran } = await testing.observeFailure(sandbox, fn, TABLES);
  return { error, nodes, ran };
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
