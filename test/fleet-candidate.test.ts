// Several app instances (here: several clusters in one process) over one sandbox: they pick the
// same candidate whatever their replica order, and two writable nodes stop writes (split brain).
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep, waitUntil } from '@pgpulse/sandbox/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Cluster,
  createCluster,
  type PgPulseConfig,
  SplitBrainError,
  type SplitBrainEvent,
} from '../packages/core/src/index.js';

const INTERVAL = 100;
let sandbox: SandboxCluster | undefined;
const clusters: Cluster[] = [];

afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.close()));
  await sandbox?.stop();
  sandbox = undefined;
});

function instance(s: SandboxCluster, replicas: readonly string[], config: Partial<PgPulseConfig>) {
  const cluster = createCluster({
    primary: s.node('primary').url,
    replicas: replicas.map((name, i) => ({
      host: '127.0.0.1',
      port: s.node(name).port,
      user: 'postgres',
      database: 'postgres',
      name: `r${i}-${name}`,
    })),
    health: { intervalMs: INTERVAL, timeoutMs: 1000, maxConsecutiveFailures: 2 },
    pool: { acquireTimeoutMs: 2000, connectTimeoutMs: 500 },
    ...config,
  });
  clusters.push(cluster);
  return cluster;
}

async function allUp(fleet: readonly Cluster[]): Promise<void> {
  await waitUntil(
    () => fleet.every((c) => c.nodes.every((n) => n.health.up && n.health.lastProbe)),
    {
      timeoutMs: 10_000,
      intervalMs: INTERVAL,
      message: 'nodes did not all answer their probes',
    },
  );
}

async function inRecovery(s: SandboxCluster, name: string): Promise<boolean> {
  const [row] = await s.query<{ r: boolean }>(name, 'SELECT pg_is_in_recovery() AS r');
  return row!.r;
}

describe('fleet: one candidate, one primary', () => {
  it('instances with the replicas in different orders pick the same candidate', async () => {
    sandbox = await startCluster({ replicas: 3 });
    const s = sandbox;
    await s.query('primary', 'CREATE TABLE t (id int)');
    await s.waitForReplay();
    const orders = [
      ['replica1', 'replica2', 'replica3'],
      ['replica3', 'replica1', 'replica2'],
      ['replica2', 'replica3', 'replica1'],
    ];
    const fleet = orders.map((order) =>
      instance(s, order, { failover: { promotion: 'semi-automatic' } }),
    );
    await Promise.all(fleet.map((c) => c.ready()));
    // A loaded machine can time a first probe out; the rule compares what every instance sees.
    await allUp(fleet);
    // While the primary lives, standbys' positions move between two instances' probes; once it
    // is gone they are final, and the rule must give one answer whatever each list's order.
    // After the primary dies, each instance offers one candidate: the same node everywhere.
    const offers = fleet.map(
      (c) =>
        new Promise<string>((resolve) => c.once('failover-candidate', (e) => resolve(e.candidate))),
    );
    await s.kill('primary');
    const offered = await Promise.all(offers);
    const offeredPorts = offered.map(
      (name, i) => fleet[i]!.nodes.find((n) => n.name === name)!.port,
    );
    expect(new Set(offeredPorts).size).toBe(1);
    // Nothing was promoted: semi-automatic waits for approve().
    for (const name of ['replica1', 'replica2', 'replica3'])
      expect(await inRecovery(s, name)).toBe(true);
  });

  it('automatic, no coordinator: two instances with shuffled order and phases promote one node', {
    timeout: 120_000,
  }, async () => {
    sandbox = await startCluster({ replicas: 2 });
    const s = sandbox;
    await s.query('primary', 'CREATE TABLE t (id int)');
    await s.waitForReplay();
    const a = instance(s, ['replica1', 'replica2'], { failover: { promotion: 'automatic' } });
    await a.ready();
    await sleep(INTERVAL / 2); // another probe phase
    const b = instance(s, ['replica2', 'replica1'], {
      failover: { promotion: 'automatic' },
      health: { intervalMs: INTERVAL + 30, timeoutMs: 1000, maxConsecutiveFailures: 2 },
    });
    await b.ready();
    const elected = [a, b].map(
      (c) =>
        new Promise<{ to: string; promotedBy: string }>((resolve) =>
          c.once('failover-completed', resolve),
        ),
    );
    await s.kill('primary');
    const [ea, eb] = await Promise.all(elected);
    const port = (c: Cluster, name: string) => c.nodes.find((n) => n.name === name)!.port;
    expect(port(a, ea!.to)).toBe(port(b, eb!.to));
    const writable = [];
    for (const name of ['replica1', 'replica2'])
      if (!(await inRecovery(s, name))) writable.push(name);
    expect(writable).toHaveLength(1);
    // Both write to that node, and to no other.
    await a.pool.query('INSERT INTO t VALUES (1)');
    await b.pool.query('INSERT INTO t VALUES (2)');
    const [row] = await s.query<{ n: string }>(writable[0]!, 'SELECT count(*) AS n FROM t');
    expect(Number(row!.n)).toBe(2);
  });

  it('two writable nodes on the newest timeline: split-brain event, typed error, no write anywhere', async () => {
    sandbox = await startCluster({ replicas: 2 });
    const s = sandbox;
    await s.query('primary', 'CREATE TABLE t (id int)');
    await s.waitForReplay();
    const c = instance(s, ['replica1', 'replica2'], {});
    await c.ready();
    const splits: SplitBrainEvent[] = [];
    c.on('split-brain', (e) => splits.push(e));
    await s.kill('primary');
    // Two promotions from the same parent: both on timeline 2.
    await Promise.all([s.promote('replica1'), s.promote('replica2')]);
    await waitUntil(() => splits.length > 0, { message: 'no split-brain event' });
    expect(splits).toHaveLength(1);
    expect([...splits[0]!.nodes].sort()).toEqual(['r0-replica1', 'r1-replica2']);
    const error = await c.pool.query('INSERT INTO t VALUES (1)').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SplitBrainError);
    expect(error).toMatchObject({ code: 'PGPULSE_SPLIT_BRAIN', retriable: true });
    expect((error as SplitBrainError).fix).toMatch(/pg_rewind|base backup/);
    expect(c.failover.splitBrain).toBeInstanceOf(SplitBrainError);
    for (const name of ['replica1', 'replica2']) {
      const [row] = await s.query<{ n: string }>(name, 'SELECT count(*) AS n FROM t');
      expect(Number(row!.n)).toBe(0);
    }
    // The operator stops one: exactly one writable node is left, and writes resume on it.
    await s.stopNode('replica2');
    await waitUntil(
      () =>
        c.pool.query('INSERT INTO t VALUES (2)').then(
          () => true,
          () => false,
        ),
      { intervalMs: 20, message: 'writes did not resume on the one writable node' },
    );
    const [row] = await s.query<{ n: string }>('replica1', 'SELECT count(*) AS n FROM t');
    expect(Number(row!.n)).toBe(1);
    expect(splits).toHaveLength(1);
  });
});
