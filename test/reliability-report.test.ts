import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { closeAfterEach, waitUntil } from '@pgpulse/sandbox/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

let sandbox: SandboxCluster | undefined;
let cluster: Cluster | undefined;

const track = closeAfterEach(afterEach);

/** Fails when `check` is not true in time (it used to return silently and leave it to the next expect). */
const until = (check: () => boolean, ms = 20_000) =>
  waitUntil(check, { timeoutMs: ms, intervalMs: 20 });

describe('#11 item 10: stats() report the truth', () => {
  it('a down replica is not reported as caught up; every node reports fenced and writable', async () => {
    sandbox = track(await startCluster({ replicas: 2 }));
    cluster = track(
      createCluster({
        primary: sandbox.primary.url,
        replicas: sandbox.replicas.map((r) => r.url),
        health: { intervalMs: 100, timeoutMs: 1000, maxConsecutiveFailures: 2 },
        failover: { promotion: 'manual' },
      }),
    );
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

  it('after a switchover the old primary is reported fenced and writable, and no lost window runs backwards', async () => {
    sandbox = track(await startCluster({ replicas: 2 }));
    cluster = track(
      createCluster({
        primary: sandbox.primary.url,
        replicas: sandbox.replicas.map((r) => r.url),
        health: { intervalMs: 100, timeoutMs: 1000, maxConsecutiveFailures: 2 },
      }),
    );
    await cluster.ready();
    const c = cluster;
    const node = (name: string) => c.stats().nodes.find((n) => n.name === name)!;
    await c.pool.query('CREATE TABLE switched (id int)');
    await c.pool.query('INSERT INTO switched VALUES (1)');
    await sandbox.waitForReplay();
    const completed = new Promise<{ lostWindow?: { from: string; to: string; bytes: number } }>(
      (resolve) => c.once('failover-completed', resolve),
    );
    // pgpulse itself does not promote beside a primary that is up and writable.
    await expect(c.failover.manual({ name: 'replica-1' })).rejects.toThrow(/up and writable/);
    // A switchover by the HA system: replica-1 is promoted while the old primary still runs.
    const sandboxReplica1Port = sandbox.node('replica1').port;
    await sandbox.promote('replica1');
    const event = await completed;
    expect(node('replica-1')).toMatchObject({ role: 'primary', writable: true, fenced: false });
    // The old primary answers, still out of recovery: it is a fenced node that may not serve,
    // not a replica in rotation, and stats() say exactly that.
    await until(() => node('primary').writable === true && node('primary').up);
    expect(node('primary')).toMatchObject({
      role: 'replica',
      up: true,
      fenced: true,
      writable: true,
    });
    const window = event.lostWindow;
    if (window !== undefined) {
      const lsn = (text: string) => {
        const [hi, lo] = text.split('/');
        return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
      };
      expect(lsn(window.from) <= lsn(window.to)).toBe(true);
      expect(window.bytes).toBeGreaterThan(0);
    }
    // Reads and writes go on, on the new primary and the other replica only.
    await c.pool.query('INSERT INTO switched VALUES (2)');
    const ports = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const { rows } = await c.pool.query<{ port: number }>('SELECT inet_server_port() AS port');
      ports.add(rows[0]!.port);
    }
    expect(ports.has(sandbox.node('primary').port)).toBe(false);
    const onPrimary = await c.primary(() =>
      c.pool.query<{ port: number }>('SELECT inet_server_port() AS port'),
    );
    expect(onPrimary.rows[0]!.port).toBe(sandboxReplica1Port);
  });
});
