// failover.coordinator with a real etcd (Debian's etcd-server, started here on free ports with
// a temp data dir): only the lease holder promotes, the other instances follow. Fails, never
// skips, when etcd is not installed.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep } from '@pgpulse/sandbox/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  CoordinatorUnavailableError,
  createCluster,
  type FailoverCompleted,
} from '../../packages/core/src/index.js';

const INTERVAL = 100;
let etcd: ChildProcess | undefined;
let etcdDir: string | undefined;
let endpoint = '';
let sandbox: SandboxCluster | undefined;
const clusters: Cluster[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  const [client, peer] = [await freePort(), await freePort()];
  etcdDir = mkdtempSync(join(tmpdir(), 'pgpulse-etcd-'));
  endpoint = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const child = spawn(
    'etcd',
    [
      '--name=pgpulse-test',
      `--data-dir=${join(etcdDir, 'data')}`,
      `--listen-client-urls=${endpoint}`,
      `--advertise-client-urls=${endpoint}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=pgpulse-test=${peerUrl}`,
    ],
    { stdio: 'ignore' },
  );
  etcd = child;
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (err) =>
      reject(
        new Error(
          `etcd could not be started (${err.message}): install Debian's etcd-server (apt-get install -y etcd-server)`,
        ),
      ),
    ),
  );
  const healthy = (async () => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const res = await fetch(`${endpoint}/health`);
        if (res.ok) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error('etcd did not become healthy within 20 s');
      await sleep(100);
    }
  })();
  await Promise.race([healthy, spawnError]);
});

afterAll(() => {
  etcd?.kill('SIGKILL');
  if (etcdDir) rmSync(etcdDir, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.close()));
  await sandbox?.stop();
  sandbox = undefined;
});

function instance(s: SandboxCluster, order: readonly string[], endpoints: readonly string[]) {
  const cluster = createCluster({
    primary: s.node('primary').url,
    replicas: order.map((name, i) => ({
      host: '127.0.0.1',
      port: s.node(name).port,
      user: 'postgres',
      database: 'postgres',
      name: `r${i}-${name}`,
    })),
    health: {
      intervalMs: INTERVAL + clusters.length * 17,
      timeoutMs: 1000,
      maxConsecutiveFailures: 2,
    },
    pool: { acquireTimeoutMs: 2000, connectTimeoutMs: 500 },
    failover: {
      promotion: 'automatic',
      coordinator: { type: 'etcd', endpoints, leaseTtlSeconds: 5, timeoutMs: 1500 },
    },
  });
  clusters.push(cluster);
  return cluster;
}

async function writableNodes(s: SandboxCluster, names: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const name of names) {
    const [row] = await s.query<{ r: boolean }>(name, 'SELECT pg_is_in_recovery() AS r');
    if (!row!.r) out.push(name);
  }
  return out;
}

describe('failover.coordinator: etcd', () => {
  it('three instances, shuffled orders and phases: one lease holder promotes, the others follow', async () => {
    sandbox = await startCluster({ replicas: 3 });
    const s = sandbox;
    await s.query('primary', 'CREATE TABLE t (who int)');
    await s.waitForReplay();
    const orders = [
      ['replica1', 'replica2', 'replica3'],
      ['replica3', 'replica2', 'replica1'],
      ['replica2', 'replica1', 'replica3'],
    ];
    const fleet: Cluster[] = [];
    for (const order of orders) {
      const c = instance(s, order, [endpoint]);
      await c.ready();
      fleet.push(c);
      await sleep(37); // probe phases differ
    }
    const elected = fleet.map(
      (c) => new Promise<FailoverCompleted>((resolve) => c.once('failover-completed', resolve)),
    );
    await s.kill('primary');
    const events = await Promise.all(elected);
    const ports = events.map((e, i) => fleet[i]!.nodes.find((n) => n.name === e.to)!.port);
    expect(new Set(ports).size).toBe(1);
    // Exactly one instance ran pg_promote(); the others followed its promotion.
    expect(events.filter((e) => e.promotedBy === 'pgpulse')).toHaveLength(1);
    const writable = await writableNodes(s, ['replica1', 'replica2', 'replica3']);
    expect(writable).toHaveLength(1);
    expect(s.node(writable[0]!).port).toBe(ports[0]);
    await Promise.all(fleet.map((c, i) => c.pool.query('INSERT INTO t VALUES ($1)', [i])));
    const [row] = await s.query<{ n: string }>(writable[0]!, 'SELECT count(*) AS n FROM t');
    expect(Number(row!.n)).toBe(3);
  });

  it('an unreachable coordinator: no promotion, failover-failed with CoordinatorUnavailableError', async () => {
    sandbox = await startCluster({ replicas: 2 });
    const s = sandbox;
    const dead = `http://127.0.0.1:${await freePort()}`;
    const c = instance(s, ['replica1', 'replica2'], [dead]);
    await c.ready();
    const failed = new Promise<Error>((resolve) =>
      c.on('failover-failed', ({ error }) => resolve(error)),
    );
    await s.kill('primary');
    const error = await failed;
    expect(error).toBeInstanceOf(CoordinatorUnavailableError);
    expect(error).toMatchObject({ code: 'PGPULSE_COORDINATOR_UNAVAILABLE', retriable: true });
    await sleep(5 * INTERVAL);
    expect(await writableNodes(s, ['replica1', 'replica2'])).toEqual([]);
  });
});
