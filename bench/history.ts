// pnpm bench:history — the history checker (bench/lib/history.ts) run longer than its test:
// 12 clients, 20 s per level, the fault schedule of apply delays (0–800 ms) and paused replay.
// Prints anomaly counts by kind and the replica share of reads for each level.

import { type ConsistencyLevel, createCluster } from '@pgpulse/core';
import { startCluster } from '@pgpulse/sandbox';
import { prepareHistory, runHistory } from './lib/history.js';

const CLIENTS = Number(process.env.CLIENTS ?? 12);
const DURATION_MS = Number(process.env.DURATION_MS ?? 20_000);

// pgpulse's probe timers are unref'd (they must not keep an app alive); a bench with nothing
// else pending would exit while a statement waits for a probe round.
const keepAlive = setInterval(() => {}, 1000);
const sandbox = await startCluster({ replicas: 2 });
try {
  await prepareHistory(sandbox, CLIENTS);
  for (const level of ['read-your-writes', 'strong', 'eventual'] as ConsistencyLevel[]) {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 100 },
      replicaLag: { maxLagMs: null, maxLagBytes: null },
      consistency: { level },
    });
    await cluster.ready();
    const r = await runHistory(cluster, sandbox, { clients: CLIENTS, durationMs: DURATION_MS });
    await cluster.close();
    console.log(
      `${level.padEnd(16)} requests ${r.ops}  writes ${r.writes}  reads ${r.reads}  ` +
        `replica share ${((100 * r.replicaReads) / Math.max(1, r.reads)).toFixed(1)} %  ` +
        `errors ${r.errors}  read-your-writes anomalies ${r.anomalies['read-your-writes']}  ` +
        `monotonic-reads anomalies ${r.anomalies['monotonic-reads']}`,
    );
  }
} finally {
  await sandbox.stop();
  clearInterval(keepAlive);
}
