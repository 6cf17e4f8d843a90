import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  connectionFailureOf,
  createCluster,
  NodeConnectionError,
  type PgPulseConfig,
  PgPulseError,
  PrimaryUnavailableError,
} from '../packages/core/src/index.js';

let sandbox: SandboxCluster;
const opened: Cluster[] = [];

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1, auth: 'scram-sha-256' });
}, 60_000);

afterAll(async () => {
  await Promise.all(opened.map((c) => c.close()));
  await sandbox?.stop();
});

function url(base: string, change: (u: URL) => void): string {
  const u = new URL(base);
  change(u);
  return u.toString();
}

function cluster(config: Partial<PgPulseConfig>): Cluster {
  const c = createCluster({
    primary: sandbox.primary.url,
    replicas: sandbox.replicas.map((r) => r.url),
    health: { intervalMs: 200, timeoutMs: 2_000 },
    pool: { connectTimeoutMs: 2_000, acquireTimeoutMs: 3_000 },
    ...config,
  });
  opened.push(c);
  return c;
}

/** ready()'s outcome: the typed error it rejected with (or undefined), and how long it took. */
async function outcome(c: Cluster): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  const error = await c.ready().then(
    () => undefined,
    (err: unknown) => err,
  );
  return { error, ms: Math.round(performance.now() - started) };
}

describe('ready() rejects a set-up that cannot work (#11 item 3)', () => {
  const figures: Record<string, string> = {};
  afterAll(() => console.log('ready() outcomes:', JSON.stringify(figures)));

  it.each([
    [
      'wrong password',
      (u: URL): void => {
        u.password = 'wrong-password';
      },
      'auth-failed',
      '28P01',
      false,
    ],
    [
      'unknown database',
      (u: URL): void => {
        u.pathname = '/no_such_db';
      },
      'unknown-database',
      '3D000',
      false,
    ],
    [
      'unresolvable host',
      (u: URL): void => {
        u.hostname = 'no-such-host.invalid';
      },
      'dns',
      undefined,
      false,
    ],
    [
      'refused primary',
      (u: URL): void => {
        u.port = '1';
      },
      'refused',
      undefined,
      true,
    ],
  ] as const)(
    '%s on the primary',
    async (label, change, failure, sqlstate, retriable) => {
      const c = cluster({ primary: url(sandbox.primary.url, change) });
      const { error, ms } = await outcome(c);
      expect(error).toBeInstanceOf(NodeConnectionError);
      const err = error as NodeConnectionError;
      figures[label] =
        `${err.code} ${err.failure} node=${err.node.name} retriable=${err.retriable} in ${ms} ms`;
      expect(err.failure).toBe(failure);
      expect(err.node.name).toBe('primary');
      expect(err.retriable).toBe(retriable);
      expect(err.cause).toBeInstanceOf(Error); // the driver's own error, kept
      if (sqlstate) expect((err.cause as { code?: string }).code).toBe(sqlstate);
      // cluster.pool (a pg.Pool) gives the driver's own error, as pg would (ORMs map its code),
      // with the same typed account attached (connectionFailureOf). Once the primary's
      // breaker opened, a write is refused up front (PrimaryUnavailableError, retriable).
      const queryError = await c.pool.query('INSERT INTO nothing VALUES (1)').catch((e) => e);
      if (queryError instanceof PrimaryUnavailableError) {
        expect(queryError.retriable).toBe(true);
      } else {
        expect(queryError).not.toBeInstanceOf(PgPulseError);
        if (sqlstate) expect((queryError as { code?: string }).code).toBe(sqlstate);
        const context = connectionFailureOf(queryError);
        expect(context?.retriable).toBe(retriable);
        expect(context?.failure).toBe(failure);
        expect(context?.node.name).toBe('primary');
      }
    },
    30_000,
  );

  it('a replica with a wrong password fails ready() naming the replica', async () => {
    const c = cluster({
      replicas: sandbox.replicas.map((r) =>
        url(r.url, (u) => {
          u.password = 'nope';
        }),
      ),
    });
    const { error, ms } = await outcome(c);
    expect(error).toBeInstanceOf(NodeConnectionError);
    const err = error as NodeConnectionError;
    figures['replica wrong password'] = `${err.failure} node=${err.node.name} in ${ms} ms`;
    expect(err.node.role).toBe('replica');
    expect(err.failure).toBe('auth-failed');
  }, 30_000);

  it('a replica that is merely down does not fail ready(); it is a node-down event', async () => {
    const name = sandbox.replicas[0]!.name;
    await sandbox.stopNode(name);
    try {
      const c = cluster({
        health: { intervalMs: 100, timeoutMs: 1_000, maxConsecutiveFailures: 2 },
      });
      const down = new Promise((resolve) => c.once('node-down', resolve));
      const { error, ms } = await outcome(c);
      figures['replica down'] = `${error === undefined ? 'resolved' : String(error)} in ${ms} ms`;
      expect(error).toBeUndefined();
      await expect(down).resolves.toMatchObject({ role: 'replica' });
      // Reads still work: the primary serves them.
      await expect(c.pool.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    } finally {
      await sandbox.start(name);
    }
  }, 30_000);

  it('a sound set-up resolves, and resolves again on the next call', async () => {
    const c = cluster({});
    await expect(c.ready()).resolves.toBeUndefined();
    await expect(c.ready()).resolves.toBeUndefined();
  }, 30_000);

  it('a ready() rejected while the primary was down resolves on the same cluster once it is back (#10)', async () => {
    const name = sandbox.primary.name;
    await sandbox.stopNode(name);
    const c = cluster({ health: { intervalMs: 100, timeoutMs: 1_000 } });
    try {
      const { error } = await outcome(c);
      expect(error).toBeInstanceOf(NodeConnectionError);
      expect((error as NodeConnectionError).node.role).toBe('primary');
      // A failed start-up is not kept: the next call checks again, and fails again meanwhile.
      await expect(c.ready()).rejects.toBeInstanceOf(NodeConnectionError);
    } finally {
      await sandbox.start(name);
    }
    // The same instance recovers: ready() is retried until a probe round has seen the primary
    // back (bounded; the round's timing depends on the load, the outcome does not).
    const deadline = performance.now() + 40_000;
    let last: unknown;
    for (;;) {
      last = await c.ready().then(
        () => undefined,
        (err: unknown) => err,
      );
      if (last === undefined || performance.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(last).toBeUndefined();
    await expect(c.pool.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
  }, 60_000);
});
