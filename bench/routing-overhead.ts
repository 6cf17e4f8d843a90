// Routing overhead: the same point-select and insert workloads through a raw pg.Pool and
// through cluster.pool, both against the same primary of a sandbox cluster, interleaved
// A B B A over several pairs so drift hits both sides alike. Also the classifier's cost per
// call, cached and uncached. Run: pnpm bench:routing (the built bundle, bench/built.sh;
// PGPULSE_BENCH_SOURCE=1: the TypeScript sources)
import { createClassifier, createCluster, loadParser } from '@pgpulse/core';
import { startCluster } from '@pgpulse/sandbox';
import pg from 'pg';
import { compare, type Workload } from './lib/measure.js';
import { measuredForm } from './lib/measured-form.js';

const options = {
  pairs: Number(process.env.PAIRS ?? 6),
  seconds: Number(process.env.SECONDS ?? 2),
  workers: 8,
};

const sandbox = await startCluster({ replicas: 0 });
try {
  await sandbox.query(
    'primary',
    `CREATE TABLE bench_items (id int PRIMARY KEY, name text, score int);
     INSERT INTO bench_items SELECT i, 'item ' || i, i % 100 FROM generate_series(1, 10000) i;
     CREATE TABLE bench_log (id bigserial PRIMARY KEY, item_id int, note text);`,
  );
  const raw = new pg.Pool({ connectionString: sandbox.primary.url, max: options.workers });
  const cluster = createCluster({
    primary: sandbox.primary.url,
    pool: { maxSize: options.workers },
  });
  await cluster.ready();
  const viaRaw = (sql: string, params: unknown[]) => raw.query(sql, params);
  const viaCluster = (sql: string, params: unknown[]) => cluster.pool.query(sql, params);
  const id = (i: number) => ((i * 7919) % 10_000) + 1;
  const select: Workload = (q, i) =>
    q('SELECT id, name, score FROM bench_items WHERE id = $1', [id(i)]);
  const insert: Workload = (q, i) =>
    q('INSERT INTO bench_log (item_id, note) VALUES ($1, $2)', [id(i), 'x']);
  // Warm both sides (connections, JIT).
  await compare('warm-up', ['raw pg.Pool', 'cluster.pool'], viaRaw, viaCluster, select, {
    ...options,
    pairs: 1,
    seconds: 1,
  });
  await compare('select', ['raw pg.Pool', 'cluster.pool'], viaRaw, viaCluster, select, options);
  await compare('insert', ['raw pg.Pool', 'cluster.pool'], viaRaw, viaCluster, insert, options);
  await raw.end();
  await cluster.close();
} finally {
  await sandbox.stop();
}

// Classifier cost per call.
await loadParser();
const texts = Array.from(
  { length: 20_000 },
  (_, i) => `SELECT "id", "name" FROM "users" WHERE "users"."id" = $1 AND "n" = ${i}`,
);
const uncached = createClassifier({ cacheSize: 0 });
let t = performance.now();
for (const text of texts) uncached.classify(text);
const uncachedUs = ((performance.now() - t) * 1000) / texts.length;
const cached = createClassifier();
const hot = 'SELECT "id", "name" FROM "users" WHERE "users"."id" = $1';
cached.classify(hot);
const N = 2_000_000;
t = performance.now();
for (let i = 0; i < N; i++) cached.classify(hot);
const cachedNs = ((performance.now() - t) * 1e6) / N;
console.log(
  `classifier: uncached ${uncachedUs.toFixed(2)} µs/call, cached ${cachedNs.toFixed(0)} ns/call (goal < 1 µs)`,
);
console.log(measuredForm(['@pgpulse/core']));
