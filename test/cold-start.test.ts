// A cold start opens only what its first statement needs (#22 item 1): the first read waits
// for the primary's probe alone, the replicas are probed later, and until then reads go to the
// primary. Invariants only, never speed: the periodic health round is pushed out of the way
// (health.intervalMs 60 s) so that nothing but the statements themselves starts the replicas'
// probes, however slow the machine.
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitForRounds, waitUntil } from '@pgpulse/sandbox/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster, type PgPulseConfig } from '../packages/core/src/index.js';
import { otelApiLoaded } from '../packages/core/src/tracing/index.js';

let sandbox: SandboxCluster;
let urls: string[];
let seq = 0;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 2 });
  urls = [sandbox.primary.url, ...sandbox.replicas.map((r) => r.url)];
  const admin = new pg.Client({ connectionString: sandbox.primary.url });
  await admin.connect();
  await admin.query('CREATE TABLE cold_start_rows (id text PRIMARY KEY)');
  await admin.end();
}, 60_000);

afterAll(async () => {
  await sandbox?.stop();
});

/** A cluster with an application name of its own, so its connections can be counted. */
function cold(extra: Partial<PgPulseConfig> = {}): { cluster: Cluster; app: string } {
  const app = `cold-${process.pid}-${++seq}`;
  const cluster = createCluster({
    primary: sandbox.primary.url,
    replicas: sandbox.replicas.map((r) => r.url),
    applicationName: app,
    health: { intervalMs: 60_000 },
    ...extra,
  });
  return { cluster, app };
}

/** The connections of `app` (its pool's and its probes') on each node: primary first. */
async function connectionsOf(app: string): Promise<number[]> {
  return Promise.all(
    urls.map(async (url) => {
      const client = new pg.Client({ connectionString: url, application_name: 'cold-counter' });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 OR application_name = $1 || ':health'",
          [app],
        );
        return rows[0]?.n ?? 0;
      } finally {
        await client.end();
      }
    }),
  );
}

const isStandby = async (cluster: Cluster) =>
  (await cluster.pool.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby')).rows[0]!
    .standby;

describe('lazy cold start', () => {
  it('without an OpenTelemetry SDK registered, @opentelemetry/api is not loaded (telemetry on, the default)', async () => {
    // This file registers no SDK: the first statements, a write and the full round run without it.
    const { cluster } = cold();
    try {
      await cluster.pool.query('SELECT 1');
      await cluster.pool.query('INSERT INTO cold_start_rows VALUES ($1)', [`otel-${seq}`]);
      await cluster.ready();
      expect(otelApiLoaded()).toBe(false);
    } finally {
      await cluster.close();
    }
  });

  it('the first read is answered correctly, from the primary, with at most 2 connections open', async () => {
    const { cluster, app } = cold();
    try {
      const { rows } = await cluster.pool.query<{ n: number; standby: boolean }>(
        'SELECT 41 + 1 AS n, pg_is_in_recovery() AS standby',
      );
      expect(rows).toEqual([{ n: 42, standby: false }]);
      const [primary, ...replicas] = await connectionsOf(app);
      // The primary's probe connection and the one the statement ran on; none on a replica.
      expect(primary).toBeLessThanOrEqual(2);
      expect(replicas).toEqual([0, 0]);
      expect(cluster.stats().probeRounds).toBe(0);
      // A later read starts the replicas' probes; once they answer, reads reach replicas.
      await waitUntil(async () => (await isStandby(cluster)) || undefined, { timeoutMs: 20_000 });
      expect(cluster.stats().probeRounds).toBeGreaterThan(0);
    } finally {
      await cluster.close();
    }
  });

  it('a cold first write waits for every node to be judged, and runs on the connection opened beside the probe', async () => {
    const { cluster, app } = cold();
    try {
      const { rows } = await cluster.pool.query<{ id: string }>(
        'INSERT INTO cold_start_rows (id) VALUES ($1) RETURNING id',
        [`first-write-${seq}`],
      );
      expect(rows).toEqual([{ id: `first-write-${seq}` }]);
      // The split-brain and promotion checks of a full round saw every node before the write.
      expect(cluster.stats().probeRounds).toBeGreaterThan(0);
      // One probe connection per node; on the primary one pool connection more, the one the
      // statement opened ahead (none of its own).
      expect(await connectionsOf(app)).toEqual([2, 1, 1]);
    } finally {
      await cluster.close();
    }
  });

  it('with lagPolicy error, a read before the replicas are probed goes to the primary', async () => {
    const { cluster } = cold({ replicaLag: { policy: 'error' } });
    try {
      expect(await isStandby(cluster)).toBe(false);
    } finally {
      await cluster.close();
    }
  });

  it('a write then a read during the lazy start reads its own write, in a context and unscoped', async () => {
    const { cluster } = cold();
    try {
      // The very first statements: a plain read and two writers, concurrently.
      const inContext = cluster.context(async () => {
        const id = `ctx-${seq}`;
        await cluster.pool.query('INSERT INTO cold_start_rows (id) VALUES ($1)', [id]);
        return (await cluster.pool.query('SELECT id FROM cold_start_rows WHERE id = $1', [id]))
          .rows;
      });
      const unscoped = (async () => {
        const id = `unscoped-${seq}`;
        await cluster.pool.query('INSERT INTO cold_start_rows (id) VALUES ($1)', [id]);
        return (await cluster.pool.query('SELECT id FROM cold_start_rows WHERE id = $1', [id]))
          .rows;
      })();
      const [read, ctxRows, unscopedRows] = await Promise.all([
        cluster.pool.query<{ one: number }>('SELECT 1 AS one'),
        inContext,
        unscoped,
      ]);
      expect(read.rows).toEqual([{ one: 1 }]);
      expect(ctxRows).toEqual([{ id: `ctx-${seq}` }]);
      expect(unscopedRows).toEqual([{ id: `unscoped-${seq}` }]);
      // Every node was judged before the writes went out (the split-brain check needs them).
      expect(cluster.stats().probeRounds).toBeGreaterThan(0);
    } finally {
      await cluster.close();
    }
  });

  it('session state during the lazy start: SET pins a checked-out client, and is refused on pool.query', async () => {
    const { cluster } = cold();
    try {
      const client = await cluster.pool.connect();
      try {
        await client.query("SET statement_timeout = '1234ms'");
        const { rows } = await client.query<{ statement_timeout: string }>(
          'SHOW statement_timeout',
        );
        expect(rows).toEqual([{ statement_timeout: '1234ms' }]);
        // A pin is made only after every node was judged (it may hold writes).
        expect(cluster.stats().probeRounds).toBeGreaterThan(0);
        await client.query('INSERT INTO cold_start_rows (id) VALUES ($1)', [`pinned-${seq}`]);
      } finally {
        client.release(true);
      }
      await expect(cluster.pool.query("SET statement_timeout = '5s'")).rejects.toMatchObject({
        code: 'PGPULSE_SESSION_ON_POOL',
      });
    } finally {
      await cluster.close();
    }
  });

  it('the first probe on a new connection is not a latency sample; the next ones are', async () => {
    // The new backend's warm-up made one replica look several times slower than its twin, and
    // the adaptive balancer read that first sample for a while (pnpm test:balance).
    const { cluster } = cold();
    try {
      await cluster.ready();
      // Each replica has answered its connection's first probe only (the primary, probed again
      // by the full round, may have a sample).
      const [, ...replicas] = cluster.stats().nodes.map((n) => n.latencyMs);
      expect(replicas).toEqual([0, 0]);
    } finally {
      await cluster.close();
    }
    const { cluster: probing } = cold({ health: { intervalMs: 50 } });
    try {
      await probing.ready();
      await waitForRounds(() => probing.stats().probeRounds, 2);
      await waitUntil(() => probing.stats().nodes.every((n) => n.latencyMs > 0));
    } finally {
      await probing.close();
    }
  });

  it('ready() still probes every node and reads the catalog before it resolves', async () => {
    const { cluster, app } = cold();
    try {
      await cluster.ready();
      expect(cluster.stats().probeRounds).toBeGreaterThan(0);
      for (const node of cluster.nodes) expect(node.health.lastProbe).toBeDefined();
      // One probe connection per node, no pool connection yet.
      expect(await connectionsOf(app)).toEqual([1, 1, 1]);
      // Reads go to replicas from the first one on.
      expect(await isStandby(cluster)).toBe(true);
    } finally {
      await cluster.close();
    }
  });
});
