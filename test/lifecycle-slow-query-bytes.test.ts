import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlowQueryLog } from '../packages/core/src/analysis/index.js';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

// #11 item 12: 50 distinct 282 KB statements kept +21 MB of heap in the slow-query side. Its
// memory is now bounded by bytes (slowQuery.maxBytes), which it accounts for and reports.

const BIG = 282 * 1024;

/** Statement `i`: its own shape (i + 1 output columns), padded to 282 KB by a literal. */
function bigStatement(i: number): string {
  const columns = Array.from({ length: i + 1 }, (_, k) => `${k} AS c${k}`).join(', ');
  const head = `SELECT ${columns} WHERE '`;
  const tail = `' <> ''`;
  return head + 'x'.repeat(BIG - head.length - tail.length) + tail;
}

let sandbox: SandboxCluster;
let cluster: Cluster | undefined;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
}, 60_000);

afterAll(async () => {
  await cluster?.close();
  await sandbox?.stop();
});

describe('slow-query memory bounded by bytes (#11 item 12)', () => {
  it('the log alone: 50 distinct 282 KB normalized texts stay within maxBytes, newest kept', async () => {
    const maxBytes = 2_000_000;
    const log = await SlowQueryLog.create({ maxBytes, maxQueryLength: 400_000 });
    for (let i = 0; i < 50; i++) {
      // Distinct identifiers, so the normalized text itself is 282 KB.
      const sql = `SELECT ${`c${i}_`.repeat(1)}${'y'.repeat(BIG)} FROM t${i}`;
      log.record({ sql, durationMs: 10, node: 'primary', role: 'primary' });
      expect(log.bytes).toBeLessThanOrEqual(maxBytes);
    }
    const entries = log.entries();
    // Accounting that matches what is held: every kept text counted.
    const held = entries.reduce((sum, e) => sum + e.query.length * 2, 0);
    expect(held).toBeLessThanOrEqual(log.bytes);
    expect(log.bytes).toBeGreaterThan(BIG * 2); // it holds at least one such text
    expect(entries.length).toBeLessThan(50);
    expect(log.evictions).toBe(50 - entries.length);
    expect(entries.some((e) => e.query.includes('t49'))).toBe(true);
  });

  it('a cluster: 50 distinct 282 KB slow statements keep log, queued EXPLAINs and plans within slowQuery.maxBytes', async () => {
    const maxBytes = 4 * 1024 * 1024;
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      slowQuery: { thresholdMs: 0, maxBytes, minExplainIntervalMs: 0 },
    });
    for (let i = 0; i < 50; i++) {
      await cluster.pool.query(bigStatement(i));
      const { bytes } = cluster.slowQueries();
      expect(bytes.total).toBeLessThanOrEqual(maxBytes);
      expect(bytes.explainQueue).toBeLessThanOrEqual(maxBytes / 4);
    }
    // Let the EXPLAIN queue finish, then look again.
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const explain = cluster.slowQueries().explain!;
      if (explain.queued === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 500));
    const report = cluster.slowQueries();
    console.log(
      `slow-query side after 50 x 282 KB: ${JSON.stringify(report.bytes)}, ` +
        `fingerprints ${report.queries.length}, evictions ${report.evictions}, ` +
        `explain ${JSON.stringify(report.explain)}`,
    );
    expect(report.bytes.total).toBeLessThanOrEqual(maxBytes);
    expect(report.bytes.plans).toBeLessThanOrEqual(maxBytes / 2);
    expect(report.bytes.max).toBe(maxBytes);
    // Independent of the accounting: what the report hands out (texts, samples, plans).
    expect(JSON.stringify(report.queries).length * 2).toBeLessThanOrEqual(maxBytes);
    // Every statement is accounted for: recorded (or evicted), its EXPLAIN run or dropped.
    expect(report.queries.length + report.evictions).toBe(50);
    const explain = report.explain!;
    expect(explain.accepted + explain.dropped + explain.rateLimited).toBe(50);
  }, 120_000);
});
