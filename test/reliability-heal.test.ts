import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { closeAfterEach, sleep, waitUntil } from '@pgpulse/sandbox/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

let sandbox: SandboxCluster | undefined;
let cluster: Cluster | undefined;

const track = closeAfterEach(afterEach);

/** `workers` read loops, each its own context, until stopped; errors and successes are timed. */
function readLoops(c: Cluster, workers: number) {
  const errors: { at: number; error: unknown }[] = [];
  const lastSuccess = new Array<number>(workers).fill(0);
  /** When each loop's read in progress started (undefined between reads). */
  const started = new Array<number | undefined>(workers).fill(undefined);
  let reads = 0;
  let running = true;
  const loops = Array.from({ length: workers }, (_, i) =>
    c.context(async () => {
      while (running) {
        started[i] = performance.now();
        try {
          await c.pool.query('SELECT count(*) FROM pg_class');
          reads++;
          lastSuccess[i] = performance.now();
        } catch (error) {
          errors.push({ at: performance.now(), error });
        }
        started[i] = undefined;
        // Paces the workload; nothing waits on it.
        await sleep(1);
      }
    }),
  );
  return {
    errors,
    lastSuccess,
    started,
    get reads() {
      return reads;
    },
    /** Resolves when every loop ended, or after 10 s (a stuck loop must fail the test, not hang it). */
    stop: async () => {
      running = false;
      await Promise.race([Promise.all(loops), sleep(10_000)]);
    },
  };
}

describe('#11 item 5: a blackholed replica, healed', () => {
  it('no read fails or stays stuck, during the blackhole or after heal', async () => {
    sandbox = track(await startCluster({ replicas: 2 }));
    const proxy = await sandbox.proxy('replica1');
    cluster = track(
      createCluster({
        primary: sandbox.primary.url,
        replicas: [proxy.url, sandbox.replicas[1]!.url],
        health: { intervalMs: 200, timeoutMs: 400, maxConsecutiveFailures: 2 },
        circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 500 },
        pool: { maxSize: 8, acquireTimeoutMs: 3000, connectTimeoutMs: 1000 },
        consistency: { level: 'eventual' },
      }),
    );
    await cluster.ready();
    const c = cluster;
    const downs: number[] = [];
    c.on('node-down', (e) => {
      if (e.node === 'replica-1') downs.push(performance.now());
    });
    const loops = readLoops(c, 8);
    try {
      // The loops run against a healthy cluster first, so the blackhole cuts reads in flight.
      await sleep(500);
      proxy.blackhole();
      // Generous, for the probes to call it down (2 failed probes) on a loaded machine too.
      await waitUntil(() => downs.length > 0, {
        timeoutMs: 20_000,
        message: 'replica-1 was not marked down after the blackhole',
      });
      expect(downs.length).toBe(1);
      // A window, not a wait: the loops keep reading while replica-1 stays partitioned.
      await sleep(1500);
      // Still partitioned: no read may still be waiting on replica-1 from before it was found down.
      const waitingSinceBefore = loops.started.filter((t) => t !== undefined && t < downs[0]!);
      proxy.heal();
      const healedAt = performance.now();
      // Replica-1 rejoins, then every loop must keep reading for 4 s.
      await waitUntil(
        () => {
          const r1 = c.stats().nodes.find((n) => n.name === 'replica-1')!;
          return r1.up && r1.breaker === 'closed';
        },
        { timeoutMs: 20_000, message: 'replica-1 did not rejoin (up, breaker closed) after heal' },
      );
      await sleep(4000);
      const checkedAt = performance.now();
      const stuck = loops.lastSuccess.filter((t) => t < checkedAt - 3000).length;
      console.log(
        `blackhole then heal: ${loops.reads} reads, ${loops.errors.length} app-visible errors ` +
          `(${loops.errors.filter((e) => e.at >= healedAt).length} after heal), ${stuck} of 8 loops stuck`,
        loops.errors.slice(0, 3).map((e) => String(e.error)),
      );
      expect(loops.errors.map((e) => String(e.error))).toEqual([]);
      expect(stuck).toBe(0);
      expect(waitingSinceBefore).toEqual([]);
      const r1 = c.stats().nodes.find((n) => n.name === 'replica-1')!;
      expect(r1.up).toBe(true);
    } finally {
      proxy.heal();
      await loops.stop();
    }
  });
});
