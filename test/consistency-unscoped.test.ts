// Reads outside any context after writes outside any context (#11 item 8). Unscoped statements
// share one read-your-writes session: a read must see every unscoped write that finished before
// it began, in any worker. With 8 workers writing once per 20 reads there is nearly always such
// a write that no probe has bounded yet; on-demand position checks (`health.positionCheckMs`)
// let reads allowed to wait (`consistency.waitMs`) go to a replica once it has replayed it,
// instead of to the primary until the next probe round (`health.intervalMs`).
//
// replica2's replay is paused, so it is behind every write of the workload: a check that let it
// serve a read which needs a write would be caught as a stale read. The control run at
// 'eventual' shows that it is (the staleness check can fail).
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep, waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COUNTER_SETUP, runUnscoped } from '../bench/lib/unscoped.js';
import { createCluster, type PgPulseConfig } from '../packages/core/src/index.js';

const WORKLOAD = { workers: 8, readsPerWrite: 20, ms: 2_000, minRounds: 3 };

describe('unscoped reads after unscoped writes', () => {
  let sandbox: SandboxCluster;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query('primary', COUNTER_SETUP);
    await sandbox.waitForReplay();
    await sandbox.pauseReplay('replica2');
  }, 60_000);
  afterAll(async () => {
    await sandbox?.stop();
  });

  const withCluster = async <T>(
    config: Partial<PgPulseConfig>,
    fn: (cluster: ReturnType<typeof createCluster>) => Promise<T>,
  ): Promise<T> => {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      // A paused replica stays in rotation: only read-your-writes may keep reads off it.
      replicaLag: { maxLagMs: null, maxLagBytes: null },
      ...config,
    });
    try {
      await cluster.ready();
      return await fn(cluster);
    } finally {
      await cluster.close();
    }
  };

  it('go back to a replica that replayed the writes: >= 70 % of reads, none stale', async () => {
    const outcome = await withCluster(
      {
        // A read waits until a check shows a replica has replayed what it needs: 200 ms is
        // generous for a loaded machine. The probe round (10 s) never comes inside a wait, so
        // only on-demand checks can send these reads to a replica (without them: ~1 %).
        health: { intervalMs: 10_000 },
        consistency: { waitMs: 200 },
      },
      async (cluster) => {
        let done = false;
        const outcome = runUnscoped(cluster, WORKLOAD).finally(() => {
          done = true;
        });
        // The checks use the probe connections: never a second health connection to a node.
        let healthConnections = 0;
        while (!done) {
          for (const node of ['primary', 'replica1', 'replica2']) {
            const [row] = await sandbox.query<{ n: number }>(
              node,
              "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE '%:health'",
            );
            healthConnections = Math.max(healthConnections, row?.n ?? 0);
          }
          await sleep(50);
        }
        return { ...(await outcome), healthConnections };
      },
    );
    const share = outcome.replicaReads / outcome.reads;
    const figures = JSON.stringify(outcome);
    expect(outcome.stale, figures).toBe(0);
    expect(share, figures).toBeGreaterThanOrEqual(0.7);
    expect(outcome.positionChecks, figures).toBeGreaterThan(0);
    // Bounded: one check started per positionCheckMs (10 ms by default) at most.
    expect(outcome.positionChecks, figures).toBeLessThanOrEqual(outcome.elapsedMs / 10 + 1);
    expect(outcome.healthConnections, figures).toBe(1);
  });

  it('control: at eventual the same workload reads the paused replica and sees stale values', async () => {
    const outcome = await withCluster({ consistency: { level: 'eventual' } }, (cluster) =>
      runUnscoped(cluster, WORKLOAD),
    );
    expect(outcome.stale, JSON.stringify(outcome)).toBeGreaterThan(0);
  });

  // Last: it stops the primary. With one failed probe enough for a verdict and no probe round
  // due, only the on-demand checks see the dead primary; they must not count it (a failover
  // must not start sooner because reads were asking for positions).
  it('a failed check changes no node health: the stopped primary stays up until a probe round', async () => {
    await withCluster(
      { health: { intervalMs: 60_000, maxConsecutiveFailures: 1 } },
      async (cluster) => {
        const downs: string[] = [];
        cluster.on('node-down', ({ node }) => downs.push(node));
        await cluster.pool.query('UPDATE counter SET v = v + 1 WHERE id = 1');
        await sandbox.stopNode('primary');
        for (let i = 0; i < 3; i++) {
          const before = cluster.stats().positionChecks;
          // Held on the primary by the unbounded write, the read asks for a check.
          await cluster.pool.query('SELECT v FROM counter WHERE id = 1').catch(() => undefined);
          await waitUntil(() => cluster.stats().positionChecks > before);
          const primary = cluster.stats().nodes.find((n) => n.role === 'primary');
          expect(primary?.up, `after ${i + 1} failed checks`).toBe(true);
        }
        expect(downs).toEqual([]);
      },
    );
  });
});
