// pnpm bench:cache — the query result cache (#13).
// 1. Hot read: the same indexed SELECT through cluster.cached() against the uncached read, in
//    alternating 1 s phases (6 pairs, 8 concurrent loops each), ops/s and the ratio per pair.
// 2. Memory: 1,000,000 distinct keys through ResultCache.read() (the cache's own read path,
//    fed synthetic rows so no server is needed for a million reads) with maxBytes = 64 MiB;
//    heap growth after a full GC (--expose-gc) against maxBytes.

import { createCluster } from '@pgpulse/core';
import { startCluster } from '@pgpulse/sandbox';
import type pg from 'pg';
import { ResultCache } from '../packages/core/src/cache/index.js';
import { parseConfig } from '../packages/core/src/config/index.js';

const PAIRS = Number(process.env.PAIRS ?? 6);
const PHASE_MS = Number(process.env.PHASE_MS ?? 1000);
const LOOPS = 8;
const KEYS = Number(process.env.KEYS ?? 1_000_000);
const MAX_BYTES = 64 * 1024 * 1024;

const keepAlive = setInterval(() => {}, 1000); // probes' timers are unref'd
const sandbox = await startCluster({ replicas: 1 });
try {
  await sandbox.query(
    'primary',
    `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);
     INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 1000) g;`,
  );
  await sandbox.waitForReplay();
  const cluster = createCluster({
    primary: sandbox.primary.url,
    replicas: sandbox.replicas.map((r) => r.url),
    cache: { maxBytes: MAX_BYTES, defaultTtlMs: 600_000 },
  });
  await cluster.ready();
  const sql = 'SELECT id, name, price FROM items WHERE id = $1';
  const phase = async (cached: boolean): Promise<number> => {
    let ops = 0;
    const end = performance.now() + PHASE_MS;
    await Promise.all(
      Array.from({ length: LOOPS }, async (_, loop) => {
        const id = (loop % 10) + 1;
        while (performance.now() < end) {
          if (cached) await cluster.cached(() => cluster.pool.query(sql, [id]));
          else await cluster.pool.query(sql, [id]);
          ops++;
        }
      }),
    );
    return (ops * 1000) / PHASE_MS;
  };
  await phase(false);
  await phase(true); // warm both paths
  const ratios: number[] = [];
  for (let pair = 1; pair <= PAIRS; pair++) {
    const uncached = await phase(false);
    const cached = await phase(true);
    ratios.push(cached / uncached);
    console.log(
      `pair ${pair}: uncached ${uncached.toFixed(0)} ops/s, cached ${cached.toFixed(0)} ops/s, ratio ${(cached / uncached).toFixed(1)}x`,
    );
  }
  ratios.sort((a, b) => a - b);
  console.log(
    `hot read through the cache: median ratio ${ratios[Math.floor(ratios.length / 2)]?.toFixed(1)}x, ` +
      `min ${ratios[0]?.toFixed(1)}x (${PAIRS} pairs of ${PHASE_MS} ms, ${LOOPS} concurrent loops), ` +
      `hit ratio ${cluster.cache.stats().hitRatio.toFixed(4)}`,
  );
  await cluster.close();
} finally {
  await sandbox.stop();
}

// ----- memory -----
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (pnpm bench:cache does)');
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const config = parseConfig({
  primary: 'postgres://u@localhost/db',
  cache: { maxBytes: MAX_BYTES, channel: false },
}).cache;
const before = heap();
const cache = new ResultCache(config, () => undefined);
const fields = [{ name: 'id' }, { name: 'name' }, { name: 'price' }] as pg.FieldDef[];
const text = 'SELECT id, name, price FROM items WHERE id = $1';
const asked = { ttlMs: 600_000, tags: [] as string[] };
let peak = 0;
for (let i = 0; i < KEYS; i++) {
  await cache.read(
    'db\u0000u',
    { text, values: [i], rowMode: undefined },
    ['items'],
    asked,
    undefined,
    async () => ({
      result: {
        command: 'SELECT',
        rowCount: 1,
        oid: 0,
        fields,
        rows: [{ id: i, name: `item ${i}`, price: String(i * 1.5) }],
      },
      position: { lsn: BigInt(i), primaryAt: performance.now() },
    }),
  );
  if (i % 200_000 === 199_999) peak = Math.max(peak, heap() - before);
}
const after = heap() - before;
peak = Math.max(peak, after);
const stats = cache.stats();
const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
console.log(
  `${KEYS} distinct keys, maxBytes ${mib(MAX_BYTES)} MiB: entries ${stats.entries}, ` +
    `estimated bytes ${mib(stats.bytes)} MiB, evictions ${stats.evictions}; heap growth after GC ` +
    `${mib(after)} MiB (peak sampled ${mib(peak)} MiB) = maxBytes + ${mib(peak - MAX_BYTES)} MiB`,
);
clearInterval(keepAlive);
