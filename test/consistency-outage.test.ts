// Reads and writes while the primary is gone: a read that needs its context's write says so
// (ReadNeedsPrimaryError), failover.writeWaitMs covers every placement that finds no primary
// (the first write after the crash, and a read with consistency.waitMs), and the service's
// read({ consistencyRequired: true }) is strong.
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { closeAfterEach, waitUntil } from '@pgpulse/sandbox/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Cluster,
  createCluster,
  DatabaseOptimizationService,
  type PgPulseConfig,
  ReadNeedsPrimaryError,
} from '../packages/core/src/index.js';

let sandbox: SandboxCluster | undefined;
let cluster: Cluster | undefined;
const track = closeAfterEach(afterEach);

async function setup(config: Partial<PgPulseConfig> = {}) {
  sandbox = track(await startCluster({ replicas: 1 }));
  await sandbox.query('primary', 'CREATE TABLE events (id serial PRIMARY KEY, note text)');
  await sandbox.waitForReplay();
  cluster = track(
    createCluster({
      primary: sandbox.primary.url,
      replicas: [sandbox.replicas[0]!.url],
      health: { intervalMs: 100, timeoutMs: 300, maxConsecutiveFailures: 2 },
      circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 300 },
      pool: { acquireTimeoutMs: 2000, connectTimeoutMs: 500 },
      replicaLag: { maxLagMs: null, maxLagBytes: null },
      ...config,
    }),
  );
  await cluster.ready();
  return { s: sandbox, c: cluster };
}

async function poll(what: string, fn: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Replication is asynchronous: a commit the primary acknowledged may not have reached the
 * standby when the primary is killed, and then the promoted standby rightly lacks it. A test
 * that promotes after a write first waits until the standby has received it.
 */
async function waitUntilReceived(s: SandboxCluster, name: string): Promise<void> {
  const [row] = await s.query<{ lsn: string }>(
    'primary',
    'SELECT pg_current_wal_lsn()::text AS lsn',
  );
  await waitUntil(
    async () => {
      const [r] = await s.query<{ ok: boolean }>(
        name,
        'SELECT coalesce(pg_last_wal_receive_lsn() >= $1::pg_lsn, false) AS ok',
        [row!.lsn],
      );
      return r?.ok === true;
    },
    { timeoutMs: 15_000, message: () => `${name} receiving the write at ${row!.lsn}` },
  );
}

const count = (c: Cluster, note: string) =>
  c.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE note = $1', [note]);

describe('during a primary outage', () => {
  it('a read that needs its context’s unconfirmed write fails with ReadNeedsPrimaryError; other reads continue', async () => {
    const { s, c } = await setup();
    await s.pauseReplay('replica1');
    await c.context(async () => {
      await c.pool.query("INSERT INTO events (note) VALUES ('mine')");
      await s.kill('primary');
      await poll('the primary to be seen down', () =>
        c.stats().nodes.some((n) => n.role === 'primary' && !n.up),
      );
      const err = await count(c, 'mine').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReadNeedsPrimaryError);
      expect(err).toMatchObject({ code: 'PGPULSE_READ_NEEDS_PRIMARY', retriable: true });
      expect(String((err as Error).message)).toMatch(/read needs the primary/);
      expect(String((err as Error).message)).toMatch(/withConsistency\('eventual'/);
      // An explicit stale read is served by the replica (without the write: replay is paused).
      const stale = await c.withConsistency('eventual', () => count(c, 'mine'));
      expect(stale.rows[0]!.n).toBe(0);
    });
    // Another context has nothing to wait for: it reads from the replica.
    const other = await c.context(() => count(c, 'mine'));
    expect(other.rows[0]!.n).toBe(0);
  });

  it('failover.writeWaitMs covers the first write after the primary dies (not yet seen down)', async () => {
    const { s, c } = await setup({ failover: { promotion: 'external', writeWaitMs: 8000 } });
    await s.kill('primary');
    // Once this process has read the primary's hang-up (its idle connections are gone), but
    // before the probes mark it down. A write sent in the instant before the hang-up arrives
    // fails with the driver's connection error: it may have run, so it is never resent
    // (test/reliability-hung-up.test.ts covers a hang-up that arrived but was not yet read).
    await poll('the pool to drop its connections to the dead primary', () =>
      c.stats().nodes.some((n) => n.role === 'primary' && n.pool.idle === 0),
    );
    const write = c.pool.query("INSERT INTO events (note) VALUES ('first-after')");
    setTimeout(() => void s.promote('replica1').catch(() => {}), 600);
    await write;
    const rows = await s.query<{ n: string }>(
      'replica1',
      "SELECT count(*) AS n FROM events WHERE note = 'first-after'",
    );
    expect(rows[0]!.n).toBe('1');
  });

  it('a read that needs the primary, with consistency.waitMs, waits for the new primary (no PrimaryUnavailableError)', async () => {
    const { s, c } = await setup({
      failover: { promotion: 'external', writeWaitMs: 8000 },
      consistency: { waitMs: 200 },
    });
    await s.pauseReplay('replica1');
    await c.context(async () => {
      await c.pool.query("INSERT INTO events (note) VALUES ('wait-read')");
      await waitUntilReceived(s, 'replica1');
      await s.kill('primary');
      await poll('the primary to be seen down', () =>
        c.stats().nodes.some((n) => n.role === 'primary' && !n.up),
      );
      const read = count(c, 'wait-read');
      await s.resumeReplay('replica1');
      await s.promote('replica1');
      expect((await read).rows[0]!.n).toBe(1);
    });
  });
});

describe('consistency.waitMs', () => {
  it('a read after its context’s write waits for the replica to replay it, instead of going to the primary', async () => {
    const { s, c } = await setup({ consistency: { waitMs: 10_000 } });
    const port = (r: { rows: { port: number; n: number }[] }) => r.rows[0]!;
    await s.pauseReplay('replica1');
    await c.context(async () => {
      await c.pool.query("INSERT INTO events (note) VALUES ('waited')");
      setTimeout(() => void s.resumeReplay('replica1').catch(() => {}), 300);
      const read = await c.pool.query<{ port: number; n: number }>(
        "SELECT inet_server_port() AS port, count(*)::int AS n FROM events WHERE note = 'waited'",
      );
      expect(port(read)).toEqual({ port: s.replicas[0]!.port, n: 1 });
    });
  });

  it('0 (the default): that read goes to the primary at once', async () => {
    const { s, c } = await setup();
    await s.pauseReplay('replica1');
    await c.context(async () => {
      await c.pool.query("INSERT INTO events (note) VALUES ('at-once')");
      const read = await c.pool.query<{ port: number; n: number }>(
        "SELECT inet_server_port() AS port, count(*)::int AS n FROM events WHERE note = 'at-once'",
      );
      expect(read.rows[0]).toEqual({ port: s.primary.port, n: 1 });
    });
  });
});

describe('DatabaseOptimizationService.read({ consistencyRequired })', () => {
  it('is strong: its reads go to the primary; without it they go to a replica', async () => {
    sandbox = track(await startCluster({ replicas: 1 }));
    const service = new DatabaseOptimizationService({
      primary: sandbox.primary.url,
      replicas: [sandbox.replicas[0]!.url],
      consistency: { level: 'eventual' },
    });
    cluster = track(service.cluster);
    await service.initialize();
    const port = (r: { rows: { port: number }[] }) => r.rows[0]!.port;
    const q = 'SELECT inet_server_port() AS port';
    const strong = await service.read((db) => db.query<{ port: number }>(q), {
      consistencyRequired: true,
    });
    expect(port(strong)).toBe(sandbox.primary.port);
    const eventual = await service.read((db) => db.query<{ port: number }>(q));
    expect(port(eventual)).toBe(sandbox.replicas[0]!.port);
  });
});
