// The cost of pool.resetOnRelease (issue 20): point selects through cluster.pool with no reset
// (the baseline) against 'objects' and 'all', which clear a connection with one more round trip
// each time it returns to the pool. Interleaved A B B A in the same run.
// Run: pnpm bench:session-reset
import { createCluster, type ResetOnRelease } from '@pgpulse/core';
import { startCluster } from '@pgpulse/sandbox';
import { compare, type Query, type Workload } from './lib/measure.js';

const options = {
  pairs: Number(process.env.PAIRS ?? 4),
  seconds: Number(process.env.SECONDS ?? 2),
  workers: 8,
};

const sandbox = await startCluster({ replicas: 0 });
try {
  await sandbox.query(
    'primary',
    `CREATE TABLE bench_items (id int PRIMARY KEY, name text);
     INSERT INTO bench_items SELECT i, 'item ' || i FROM generate_series(1, 10000) i;`,
  );
  const clusterWith = async (resetOnRelease: ResetOnRelease) => {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      pool: { maxSize: options.workers, resetOnRelease },
    });
    await cluster.ready();
    return cluster;
  };
  const none = await clusterWith('none');
  const via =
    (cluster: Awaited<ReturnType<typeof clusterWith>>): Query =>
    (sql, params) =>
      cluster.pool.query(sql, params);
  const select: Workload = (q, i) =>
    q('SELECT id, name FROM bench_items WHERE id = $1', [((i * 7919) % 10_000) + 1]);
  await compare('warm-up', ['none', 'none'], via(none), via(none), select, {
    ...options,
    pairs: 1,
  });
  for (const reset of ['objects', 'all'] as const) {
    const cluster = await clusterWith(reset);
    await compare(reset, ['none', reset], via(none), via(cluster), select, options);
    await cluster.close();
  }
  await none.close();
} finally {
  await sandbox.stop();
}
