// pnpm bench:unscoped — reads made outside any context after unscoped writes (#11 item 8).
// The workload of test/consistency-unscoped.test.ts (bench/lib/unscoped.ts): 8 closed-loop
// workers, no context, each doing 1 write per 20 reads, against a sandbox with two streaming
// replicas. Each setting runs on health.positionCheckMs 0 (no on-demand checks: positions only
// from the periodic probe, as before them) and on the default, one after the other in this run;
// it prints the share of reads that replicas served, the stale reads (a read that missed a write
// committed before it started; must be 0), read latency, and the ratio of the two shares.
// WAIT_MS (comma-separated consistency.waitMs values, default "0,50"), SECONDS (default 5).

import { createCluster } from '@pgpulse/core';
import { startCluster } from '@pgpulse/sandbox';
import { COUNTER_SETUP, runUnscoped } from './lib/unscoped.js';

const SECONDS = Number(process.env.SECONDS ?? 5);
const WAITS = (process.env.WAIT_MS ?? '0,50').split(',').map(Number);
const CHECK_MS = process.env.CHECK_MS === undefined ? undefined : Number(process.env.CHECK_MS);
const WORKLOAD = { workers: 8, readsPerWrite: 20 };

const keepAlive = setInterval(() => {}, 1000); // probes' timers are unref'd
const sandbox = await startCluster({ replicas: 2 });
try {
  await sandbox.query('primary', COUNTER_SETUP);
  await sandbox.waitForReplay();
  for (const waitMs of WAITS) {
    const shares: number[] = [];
    for (const positionCheckMs of [0, CHECK_MS]) {
      const cluster = createCluster({
        primary: sandbox.primary.url,
        replicas: sandbox.replicas.map((r) => r.url),
        health: positionCheckMs === undefined ? {} : { positionCheckMs },
        consistency: { waitMs },
      });
      try {
        await cluster.ready();
        await runUnscoped(cluster, { ...WORKLOAD, ms: 500 }); // warm the pools
        const o = await runUnscoped(cluster, { ...WORKLOAD, ms: SECONDS * 1000 });
        const share = o.replicaReads / o.reads;
        shares.push(share);
        const label = `waitMs ${waitMs}, positionCheckMs ${positionCheckMs ?? 'default'}`;
        console.log(
          `${label.padEnd(36)} reads ${String(o.reads).padStart(6)} (${Math.round(o.reads / SECONDS)}/s), ` +
            `writes ${o.writes}, replica share ${(share * 100).toFixed(1)} %, stale ${o.stale}, ` +
            `read p50 ${o.readLatencyMs.p50.toFixed(2)} ms p99 ${o.readLatencyMs.p99.toFixed(2)} ms, ` +
            `on-demand checks ${o.positionChecks}`,
        );
      } finally {
        await cluster.close();
      }
    }
    const [base = 0, now = 0] = shares;
    console.log(
      `waitMs ${waitMs}: replica share ratio (default / off) ${(now / base).toFixed(1)}x`,
    );
  }
} finally {
  clearInterval(keepAlive);
  await sandbox.stop();
}
