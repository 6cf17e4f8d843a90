// Routing overhead: the same point-select and insert workloads through a raw pg.Pool and
// through cluster.pool, both against the same primary of a sandbox cluster, interleaved
// A B B A over several pairs so drift hits both sides alike. Also the classifier's cost per
// call, cached and uncached. Run: pnpm bench:routing
import { createClassifier, createCluster, loadParser } from '@pgpulse/core';
import { startCluster } from '@pgpulse/sandbox';
import pg from 'pg';

const PAIRS = Number(process.env.PAIRS ?? 6);
const SECONDS = Number(process.env.SECONDS ?? 2);
const WORKERS = 8;

type Query = (sql: string, params: unknown[]) => Promise<unknown>;
interface Sample {
  qps: number;
  p50: number;
  p99: number;
  cpuUsPerQuery: number;
}

async function measure(query: Query, workload: 'select' | 'insert'): Promise<Sample> {
  const latencies: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: WORKERS }, async (_, w) => {
      while (performance.now() < deadline) {
        const id = ((n++ * 7919 + w) % 10_000) + 1;
        const s = performance.now();
        if (workload === 'select')
          await query('SELECT id, name, score FROM bench_items WHERE id = $1', [id]);
        else await query('INSERT INTO bench_log (item_id, note) VALUES ($1, $2)', [id, 'x']);
        latencies.push(performance.now() - s);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return {
    qps: latencies.length / elapsed,
    p50: latencies[Math.floor(latencies.length * 0.5)]!,
    p99: latencies[Math.floor(latencies.length * 0.99)]!,
    cpuUsPerQuery: (cpu.user + cpu.system) / latencies.length,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const sandbox = await startCluster({ replicas: 0 });
try {
  await sandbox.query(
    'primary',
    `CREATE TABLE bench_items (id int PRIMARY KEY, name text, score int);
     INSERT INTO bench_items SELECT i, 'item ' || i, i % 100 FROM generate_series(1, 10000) i;
     CREATE TABLE bench_log (id bigserial PRIMARY KEY, item_id int, note text);`,
  );
  const raw = new pg.Pool({ connectionString: sandbox.primary.url, max: WORKERS });
  const cluster = createCluster({ primary: sandbox.primary.url, pool: { maxSize: WORKERS } });
  await cluster.ready();
  const viaRaw: Query = (sql, params) => raw.query(sql, params);
  const viaCluster: Query = (sql, params) => cluster.pool.query(sql, params);
  // Warm both sides (connections, prepared caches, JIT).
  for (const q of [viaRaw, viaCluster]) await measure(q, 'select');

  for (const workload of ['select', 'insert'] as const) {
    const a: Sample[] = [];
    const b: Sample[] = [];
    for (let i = 0; i < PAIRS; i++) {
      // A B B A: alternate which side goes first.
      if (i % 2 === 0) {
        a.push(await measure(viaRaw, workload));
        b.push(await measure(viaCluster, workload));
      } else {
        b.push(await measure(viaCluster, workload));
        a.push(await measure(viaRaw, workload));
      }
    }
    const ratio = (f: (s: Sample) => number) => median(b.map(f)) / median(a.map(f));
    console.log(
      `${workload.padEnd(6)} raw pg.Pool ${median(a.map((s) => s.qps)).toFixed(0)} q/s, p50 ${median(a.map((s) => s.p50)).toFixed(3)} ms, p99 ${median(a.map((s) => s.p99)).toFixed(3)} ms, ${median(a.map((s) => s.cpuUsPerQuery)).toFixed(1)} µs CPU/q`,
    );
    console.log(
      `${workload.padEnd(6)} cluster.pool ${median(b.map((s) => s.qps)).toFixed(0)} q/s, p50 ${median(b.map((s) => s.p50)).toFixed(3)} ms, p99 ${median(b.map((s) => s.p99)).toFixed(3)} ms, ${median(b.map((s) => s.cpuUsPerQuery)).toFixed(1)} µs CPU/q`,
    );
    console.log(
      `${workload.padEnd(6)} ratio cluster/raw: throughput ${ratio((s) => s.qps).toFixed(3)}, p50 ${ratio((s) => s.p50).toFixed(3)}, p99 ${ratio((s) => s.p99).toFixed(3)}, CPU/q +${(median(b.map((s) => s.cpuUsPerQuery)) - median(a.map((s) => s.cpuUsPerQuery))).toFixed(1)} µs (${PAIRS} pairs x ${SECONDS}s, ${WORKERS} workers)`,
    );
  }
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
const cachedUs = ((performance.now() - t) * 1000) / N;
console.log(
  `classifier: uncached ${uncachedUs.toFixed(2)} µs/call, cached ${(cachedUs * 1000).toFixed(0)} ns/call (goal < 1 µs)`,
);
