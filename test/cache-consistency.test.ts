import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

/**
 * A context that wrote never gets an older cached value. The replica applies each commit
 * 15 ms late, and other contexts keep reading (and trying to cache) meanwhile, so old rows
 * are on offer in every round.
 */
describe('query result cache: read-your-writes', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query(
      'primary',
      `CREATE TABLE kv (k text PRIMARY KEY, v int NOT NULL);
       INSERT INTO kv SELECT 'k' || g, 0 FROM generate_series(1, 3) g;`,
    );
    await sandbox.waitForReplay();
    await sandbox.setApplyDelay('replica1', 15);
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 50 },
      cache: { maxBytes: 4 * 1024 * 1024, defaultTtlMs: 600_000, channel: false },
    });
    await cluster.ready();
  });

  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  const read = async (key: string) =>
    (await cluster.cached(() => cluster.pool.query('SELECT v FROM kv WHERE k = $1', [key]))).rows[0]
      .v as number;

  it('1,000 write-then-read rounds: 0 older values', async () => {
    const keys = ['k1', 'k2', 'k3'];
    let older = 0;
    let hits = 0;
    let stop = false;
    // Other contexts read all the time: each may cache what a lagging replica says.
    const others = Promise.all(
      [0, 1].map(async () => {
        while (!stop) {
          for (const k of keys) await cluster.context(() => read(k));
          await new Promise((r) => setTimeout(r, 1));
        }
      }),
    );
    try {
      for (let round = 1; round <= 1000; round++) {
        const key = keys[round % keys.length] as string;
        await cluster.context(async () => {
          // A read first: this context may cache (and be served) the old value.
          await read(key);
          if (round % 2 === 0) {
            await cluster.pool.query('UPDATE kv SET v = $2 WHERE k = $1', [key, round]);
          } else {
            const client = await cluster.pool.connect();
            try {
              await client.query('BEGIN');
              await client.query('UPDATE kv SET v = $2 WHERE k = $1', [key, round]);
              await client.query('COMMIT');
            } finally {
              client.release();
            }
          }
          const before = cluster.cache.stats().hits;
          if ((await read(key)) < round) older++;
          // And again: the entry this context may store now must not be older either.
          if ((await read(key)) < round) older++;
          hits += cluster.cache.stats().hits - before;
        });
      }
    } finally {
      stop = true;
      await others;
    }
    console.log(
      `cache read-your-writes: 1000 rounds, older values ${older}, writer's reads served from the cache ${hits}, cache ${JSON.stringify(cluster.cache.stats())}`,
    );
    expect(older).toBe(0);
    // The cache was in play for the other contexts.
    expect(cluster.cache.stats().hits).toBeGreaterThan(0);
  }, 180_000);
});
