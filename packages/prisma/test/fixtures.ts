/**
 * Shared by the Prisma test files: the tables of test/schema.prisma (created with SQL, no
 * migrate) and a way to see, from PostgreSQL itself, which nodes ran a statement.
 */
import type { Cluster } from '@pgpulse/core';
import type { SandboxCluster } from '@pgpulse/sandbox';
import { observe as observeStatements, sleep, uniqueName } from '@pgpulse/sandbox/testing';

export { sleep };

export type Role = 'primary' | 'replica';

/** The tables of test/schema.prisma, plus pg_stat_statements to observe where SQL ran. */
export const SCHEMA_SQL = `
  CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
  CREATE TABLE "User" (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text
  );
  CREATE TABLE "Post" (
    id serial PRIMARY KEY,
    title text NOT NULL,
    published boolean NOT NULL DEFAULT false,
    "authorId" integer NOT NULL REFERENCES "User" (id)
  );
  INSERT INTO "User" (email, name) SELECT 'seed' || i || '@example.com', 'seed ' || i
    FROM generate_series(1, 5) i;
  INSERT INTO "Post" (title, "authorId") SELECT 'post ' || i, 1 + i % 5 FROM generate_series(1, 10) i;
`;

export interface Served<T> {
  readonly result: T;
  /** Roles of the nodes whose PostgreSQL ran at least one statement on "User"/"Post". */
  readonly postgres: Role[];
  /** Statements on "User"/"Post" per role, as PostgreSQL counted them. */
  readonly statements: Record<Role, number>;
  /** Roles of the nodes whose pgpulse statement counter moved (when a cluster is given). */
  readonly pgpulse: Role[];
}

/**
 * Runs `fn` and reports which nodes served it: from pg_stat_statements on every node and, when
 * a cluster is given, from `cluster.stats()` deltas (the shared `observe` of
 * `@pgpulse/sandbox/testing`, bound to "User" and "Post"). Never assumed.
 */
export async function observe<T>(
  sandbox: SandboxCluster,
  cluster: Cluster | undefined,
  fn: () => Promise<T>,
): Promise<Served<T>> {
  const seen = await observeStatements(sandbox, fn, { statements: '"(User|Post)"', cluster });
  const statements: Record<Role, number> = { primary: 0, replica: 0 };
  for (const [name, calls] of Object.entries(seen.calls)) {
    const role = sandbox.node(name).role;
    if (role === 'detached') continue;
    statements[role] += calls;
  }
  return {
    result: seen.result,
    statements,
    postgres: (['primary', 'replica'] as const).filter((role) => statements[role] > 0),
    pgpulse: seen.pgpulse as Role[],
  };
}

/**
 * Makes every replica apply each commit `ms` late, and proves it before returning: a commit
 * made on the primary afterwards is received by each replica but not replayed 150 ms later.
 * (The setting is reloaded asynchronously, so it is checked, not assumed.)
 */
export async function delayReplicas(sandbox: SandboxCluster, ms: number): Promise<void> {
  await Promise.all(sandbox.replicas.map((r) => sandbox.setApplyDelay(r.name, ms)));
  await sandbox.query('primary', 'CREATE TABLE IF NOT EXISTS delay_canary (at timestamptz)');
  for (let attempt = 0; attempt < 50; attempt++) {
    const [row] = await sandbox.query<{ lsn: string }>(
      'primary',
      'WITH c AS (INSERT INTO delay_canary VALUES (now()) RETURNING 1) SELECT pg_current_wal_lsn()::text AS lsn FROM c',
    );
    const held = await Promise.all(
      sandbox.replicas.map(async (r) => {
        for (let i = 0; i < 100; i++) {
          const [state] = await sandbox.query<{ received: boolean }>(
            r.name,
            'SELECT pg_last_wal_receive_lsn() >= $1::pg_lsn AS received',
            [row?.lsn],
          );
          if (state?.received) break;
          await sleep(10);
        }
        await sleep(150);
        const [state] = await sandbox.query<{ replayed: boolean }>(
          r.name,
          'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS replayed',
          [row?.lsn],
        );
        return state?.replayed === false;
      }),
    );
    if (held.every(Boolean)) return;
  }
  throw new Error(`replicas did not start delaying commits by ${ms} ms`);
}

/** Removes the apply delay and waits until every replica has replayed everything. */
export async function undelayReplicas(sandbox: SandboxCluster): Promise<void> {
  await Promise.all(sandbox.replicas.map((r) => sandbox.setApplyDelay(r.name, 0)));
  await sandbox.waitForReplay();
}

/** A unique e-mail address per call, so tests do not depend on each other's rows. */
export function email(tag: string): string {
  return `${uniqueName(tag)}@example.com`;
}
