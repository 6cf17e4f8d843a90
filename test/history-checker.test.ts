// The history checker (bench/lib/history.ts) run short under each consistency level, with a
// fault schedule of apply delays and paused replay: no anomaly a level guarantees against, and
// anomalies found under 'eventual' (so the checker does detect them). `pnpm bench:history` runs
// it longer.
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareHistory, runHistory } from '../bench/lib/history.js';
import { type ConsistencyLevel, createCluster } from '../packages/core/src/index.js';

const CLIENTS = 6;

describe('history checker', () => {
  let sandbox: SandboxCluster;
  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await prepareHistory(sandbox, CLIENTS);
  }, 60_000);
  afterAll(async () => {
    await sandbox?.stop();
  });

  async function run(level: ConsistencyLevel) {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 100 },
      replicaLag: { maxLagMs: null, maxLagBytes: null },
      consistency: { level },
    });
    await cluster.ready();
    try {
      const result = await runHistory(cluster, sandbox, { clients: CLIENTS, durationMs: 2500 });
      console.log(
        `history ${level}: ${result.ops} requests, ${result.writes} writes, ${result.reads} reads, ` +
          `replica share ${((100 * result.replicaReads) / Math.max(1, result.reads)).toFixed(1)} %, ` +
          `errors ${result.errors}, anomalies ${JSON.stringify(result.anomalies)}`,
      );
      return result;
    } finally {
      await cluster.close();
    }
  }

  it.each(['read-your-writes', 'strong'] as const)('%s: 0 anomalies of any kind', async (level) => {
    const result = await run(level);
    expect(result.writes).toBeGreaterThan(0);
    expect(result.errors).toBe(0);
    expect(result.anomalies).toEqual({ 'read-your-writes': 0, 'monotonic-reads': 0 });
    if (level === 'strong') expect(result.replicaReads).toBe(0);
  });

  it('eventual: the checker finds read-your-writes anomalies (it detects them)', async () => {
    const result = await run('eventual');
    expect(result.replicaReads).toBeGreaterThan(0);
    expect(result.anomalies['read-your-writes']).toBeGreaterThan(0);
  });
});
