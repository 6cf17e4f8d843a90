// The unscoped read/write workload of #11 item 8, shared by test/consistency-unscoped.test.ts and
// bench/unscoped.ts: closed-loop workers outside any context, each doing 1 write per 20 reads.
import type { Cluster } from '@pgpulse/core';

/** Run once on the primary before the workload: the one counter row every write bumps. */
export const COUNTER_SETUP =
  'CREATE TABLE counter (id int PRIMARY KEY, v bigint NOT NULL); INSERT INTO counter VALUES (1, 0)';

export interface UnscopedWorkload {
  readonly workers: number;
  readonly readsPerWrite: number;
  /** How long the workers keep starting rounds (a round is the reads, then one write). */
  readonly ms: number;
  /** Rounds each worker does even when `ms` is over first (a loaded machine is slow). */
  readonly minRounds?: number;
}

export interface UnscopedOutcome {
  readonly reads: number;
  /** Reads that a replica served (its read counter). */
  readonly replicaReads: number;
  /** Reads that returned less than a value committed before they started. */
  readonly stale: number;
  readonly writes: number;
  /** On-demand replay-position checks made meanwhile (`health.positionCheckMs`). */
  readonly positionChecks: number;
  /** How long the workload ran. */
  readonly elapsedMs: number;
  readonly readLatencyMs: { readonly p50: number; readonly p99: number };
}

/**
 * Runs the workload on `cluster` (no context anywhere). Every write is
 * `UPDATE counter SET v = v + 1 … RETURNING v`; `committed` is the highest value any worker got
 * back. Unscoped statements share one read-your-writes session, so a read must return at least
 * the `committed` it saw when it started: a write finished before it began, in some worker.
 * A replica that had not replayed that write would return less, which counts as stale.
 */
export async function runUnscoped(
  cluster: Cluster,
  { workers, readsPerWrite, ms, minRounds = 1 }: UnscopedWorkload,
): Promise<UnscopedOutcome> {
  const replicaReads = () =>
    cluster
      .stats()
      .nodes.filter((n) => n.role === 'replica')
      .reduce((sum, n) => sum + n.counters.reads, 0);
  const replicaBefore = replicaReads();
  const checksBefore = cluster.stats().positionChecks;
  const latencies: number[] = [];
  let committed = 0;
  let stale = 0;
  let writes = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let round = 0; round < minRounds || performance.now() < end; round++) {
        for (let i = 0; i < readsPerWrite; i++) {
          const floor = committed;
          const started = performance.now();
          const { rows } = await cluster.pool.query<{ v: string }>(
            'SELECT v FROM counter WHERE id = 1',
          );
          latencies.push(performance.now() - started);
          if (Number(rows[0]?.v) < floor) stale++;
        }
        const { rows } = await cluster.pool.query<{ v: string }>(
          'UPDATE counter SET v = v + 1 WHERE id = 1 RETURNING v',
        );
        writes++;
        committed = Math.max(committed, Number(rows[0]?.v));
      }
    }),
  );
  const elapsedMs = performance.now() - start;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0;
  return {
    reads: latencies.length,
    replicaReads: replicaReads() - replicaBefore,
    stale,
    writes,
    positionChecks: cluster.stats().positionChecks - checksBefore,
    elapsedMs,
    readLatencyMs: { p50: at(0.5), p99: at(0.99) },
  };
}
