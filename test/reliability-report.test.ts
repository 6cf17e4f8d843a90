import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

let sandbox: SandboxCluster | undefined;
let cluster: Cluster | undefined;

afterEach(async () => {
  await cluster?.close();
  await sandbox?.stop();
  cluster = undefined;
  sandbox = undefined;
});

/** Fails when `check` is not true in time (it used to return silently and leave it to the next expect). */
const until = (check: () => boolean, ms = 20_000) =>
  waitUntil(check, { timeoutMs: ms, intervalMs: 20 });

describe('#11 item 10: stats() report the truth', () => {
  it('a down replica is not reported as caught up; every node reports fenced and writable', async () => {
    sandbox = await startCluster({ replicas: 2 });
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 100, timeoutMs: 1000, maxConsecutiveFailures: 2 },
      failover: { promotion: 'manual' },
    });
    await cluster.ready();
    const c = cluster;
    const node = (name: string) => c.stats().nodes.find((n) => n.name === name)!;
    expect(node('replica-2')).toMatchObject({
      up: true,
      lagging: false,
      fenced: false,
      writable: false,
    });

    await sandbox.stopNode('replica2');
    await until(() => !node('replica-2').up);
    expect(node('replica-2')).toMatchObject({ up: false, lagging: true, lagMs: undefined });
  });
});
