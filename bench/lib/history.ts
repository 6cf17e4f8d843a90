/**
 * A history checker in the manner of Jepsen's Elle, small: logical clients record every
 * operation (the value written and acknowledged, the value read and whether a replica served
 * it) while a fault schedule changes replicas' apply delays and pauses replay; the checker then
 * counts anomalies by kind. Each client's request is its own context, and the next request
 * imports the previous one's token, so guarantees are checked across contexts too.
 *
 * Kinds: `read-your-writes` (a client read its own register below a value it had written and
 * seen acknowledged), `monotonic-reads` (a client read a register below a value it had already
 * read of it).
 */

import type { Cluster } from '@pgpulse/core';
import type { SandboxCluster } from '@pgpulse/sandbox';

export interface HistoryOptions {
  readonly clients: number;
  readonly durationMs: number;
  /** Every this many ms the fault schedule takes its next step. */
  readonly faultStepMs?: number;
}

export interface HistoryResult {
  readonly ops: number;
  readonly writes: number;
  readonly reads: number;
  readonly replicaReads: number;
  readonly errors: number;
  readonly anomalies: { readonly 'read-your-writes': number; readonly 'monotonic-reads': number };
}

/** Creates the registers the clients use (one per client). Run once per sandbox. */
export async function prepareHistory(sandbox: SandboxCluster, clients: number): Promise<void> {
  await sandbox.query(
    'primary',
    `DROP TABLE IF EXISTS reg; CREATE TABLE reg (k int PRIMARY KEY, v int NOT NULL);
     INSERT INTO reg SELECT i, 0 FROM generate_series(0, ${clients - 1}) i;`,
  );
  await sandbox.waitForReplay();
}

/** Apply delays and paused replay, in turn, on every replica of the sandbox. */
const FAULTS: readonly { delay: number; pause: boolean }[] = [
  { delay: 400, pause: false },
  { delay: 0, pause: true },
  { delay: 800, pause: false },
  { delay: 0, pause: false },
  { delay: 200, pause: true },
];

export async function runHistory(
  cluster: Cluster,
  sandbox: SandboxCluster,
  options: HistoryOptions,
): Promise<HistoryResult> {
  const replicas = sandbox.replicas.map((r) => r.name);
  let running = true;
  const faults = (async () => {
    let step = 0;
    while (running) {
      const fault = FAULTS[step++ % FAULTS.length]!;
      await Promise.all(
        replicas.map(async (name, i) => {
          // The replicas take the schedule out of phase, so they are rarely equally behind.
          const f = i % 2 === 0 ? fault : FAULTS[(step + 2) % FAULTS.length]!;
          await sandbox.resumeReplay(name).catch(() => {});
          await sandbox.setApplyDelay(name, f.delay).catch(() => {});
          if (f.pause) await sandbox.pauseReplay(name).catch(() => {});
        }),
      );
      await new Promise((r) => setTimeout(r, options.faultStepMs ?? 300));
    }
  })();

  const result = {
    ops: 0,
    writes: 0,
    reads: 0,
    replicaReads: 0,
    errors: 0,
    anomalies: { 'read-your-writes': 0, 'monotonic-reads': 0 },
  };
  const deadline = performance.now() + options.durationMs;
  const client = async (me: number) => {
    let token = '';
    let acked = 0; // highest own value acknowledged
    const seen = new Map<number, number>(); // highest value read, per register
    while (performance.now() < deadline) {
      // One request: a context started from the previous request's token.
      token = await cluster.withConsistencyToken(token, async () => {
        try {
          if (Math.random() < 0.3) {
            const { rows } = await cluster.pool.query<{ v: number }>(
              'UPDATE reg SET v = v + 1 WHERE k = $1 RETURNING v',
              [me],
            );
            acked = Math.max(acked, rows[0]!.v);
            result.writes++;
          }
          for (const k of [me, Math.floor(Math.random() * options.clients)]) {
            const { rows } = await cluster.pool.query<{ v: number; r: boolean }>(
              'SELECT v, pg_is_in_recovery() AS r FROM reg WHERE k = $1',
              [k],
            );
            const { v, r } = rows[0]!;
            result.reads++;
            if (r) result.replicaReads++;
            if (k === me && v < acked) result.anomalies['read-your-writes']++;
            if (v < (seen.get(k) ?? 0)) result.anomalies['monotonic-reads']++;
            seen.set(k, Math.max(v, seen.get(k) ?? 0));
          }
        } catch {
          result.errors++;
        }
        result.ops++;
        return cluster.consistencyToken();
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: options.clients }, (_, i) => client(i)));
  } finally {
    running = false;
    await faults;
    for (const name of replicas) {
      await sandbox.resumeReplay(name).catch(() => {});
      await sandbox.setApplyDelay(name, 0).catch(() => {});
    }
  }
  return result;
}
