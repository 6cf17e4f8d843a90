import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { closeAfterEach, sleep, waitUntil } from '@pgpulse/sandbox/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

const INTERVAL = 500;

let sandbox: SandboxCluster | undefined;
let cluster: Cluster | undefined;

const track = closeAfterEach(afterEach);

describe('#11 item 6: a killed and restarted replica', () => {
  it('fires node-down and node-up, and rejoins on a successful probe, not at the breaker reset', async () => {
    sandbox = track(await startCluster({ replicas: 2 }));
    cluster = track(
      createCluster({
        primary: sandbox.primary.url,
        replicas: sandbox.replicas.map((r) => r.url),
        health: { intervalMs: INTERVAL, timeoutMs: 1000, maxConsecutiveFailures: 3 },
        // A reset far beyond the test's waits: only the probes can bring it back in time.
        circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 120_000 },
        consistency: { level: 'eventual' },
      }),
    );
    await cluster.ready();
    const c = cluster;
    const events: string[] = [];
    c.on('node-down', (e) => events.push(`down ${e.node}`));
    c.on('node-up', (e) => events.push(`up ${e.node}`));
    c.on('breaker', (e) => events.push(`breaker ${e.node} ${e.to}`));
    const errors: unknown[] = [];
    let running = true;
    const loops = Array.from({ length: 4 }, () =>
      c.context(async () => {
        while (running) {
          await c.pool.query('SELECT 1').catch((err) => errors.push(err));
          // Paces the workload; nothing waits on it.
          await sleep(2);
        }
      }),
    );
    const r1Reads = () => c.stats().nodes.find((n) => n.name === 'replica-1')!.counters.reads;
    try {
      await waitUntil(() => r1Reads() > 0, { message: 'replica-1 served no read' });
      await sandbox.kill('replica1');
      // The kill fails the reads in flight there and opens the breaker (2 failures).
      // Restart once the probes have seen it down too: a restart quicker than a probe interval
      // is never seen as down by anyone, and then there is no node-down to assert.
      await waitUntil(
        () => events.includes('breaker replica-1 open') && events.includes('down replica-1'),
        {
          timeoutMs: 10_000,
          message: () => `replica-1 was not seen down with its breaker open (${events.join(', ')})`,
        },
      );
      await sandbox.start('replica1');
      const startedAt = performance.now();
      const readsAtStart = r1Reads();
      await waitUntil(() => r1Reads() > readsAtStart, {
        timeoutMs: 30_000,
        message: 'the restarted replica-1 served no read',
      });
      const rejoinedAt = performance.now();
      const rejoinMs = rejoinedAt - startedAt;
      console.log(
        `restarted replica rejoined ${rejoinMs.toFixed(0)} ms after it accepted connections ` +
          `(${(rejoinMs / INTERVAL).toFixed(1)} probe intervals of ${INTERVAL} ms; ` +
          `breaker reset 120 s); events: ${events.join(', ')}; app-visible errors ${errors.length}`,
      );
      expect(rejoinedAt).toBeGreaterThan(startedAt);
      expect(events).toContain('down replica-1');
      expect(events).toContain('up replica-1');
      expect(events.indexOf('down replica-1')).toBeLessThan(events.indexOf('up replica-1'));
      expect(events.filter((e) => e.endsWith('replica-2'))).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      running = false;
      await Promise.all(loops);
    }
  });
});
