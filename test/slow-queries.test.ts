import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

describe('slow queries: capture, plans, findings, advice', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let password: string;
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    sandbox = await startCluster({ replicas: 1 });
    password = new URL(sandbox.primary.url).password;
    await sandbox.query(
      'primary',
      `CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, amount int, created_at timestamptz DEFAULT now());
       INSERT INTO orders (customer_id, amount) SELECT (i % 5000), i % 100 FROM generate_series(1, 200000) i;
       ANALYZE orders;`,
    );
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      consistency: { level: 'eventual' },
      slowQuery: { thresholdMs: 1, explain: true, minExplainIntervalMs: 0 },
      telemetry: { tracerProvider },
    });
    await cluster.ready();
  });
  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
    context.disable();
  });

  async function planFor(match: RegExp) {
    for (let i = 0; i < 200; i++) {
      const entry = cluster.slowQueries().queries.find((q) => match.test(q.query) && q.plan);
      if (entry) return entry;
      await sleep(25);
    }
    throw new Error(`no captured plan for ${match}`);
  }

  it('a slow filtered scan of a 200k-row unindexed table: plan finding names the seq scan and the column; analyzeQuery advises an index', async () => {
    const secret = 987654321;
    await cluster.pool.query('SELECT * FROM orders WHERE customer_id = $1', [secret]);
    const entry = await planFor(/FROM orders WHERE customer_id/);
    expect(entry.query).toBe('SELECT * FROM orders WHERE customer_id = $1');
    expect(entry.plan!.node).toBe('replica-1'); // explained where it ran
    const seq = entry.plan!.findings.find((f) => f.kind === 'seq-scan');
    expect(seq).toMatchObject({
      relation: 'orders',
      columns: expect.arrayContaining(['customer_id']),
    });

    const analysis = await cluster.analyzeQuery(
      'SELECT * FROM orders WHERE customer_id = $1',
      [42],
    );
    const index = analysis.suggestions.find((s) => s.kind === 'index');
    expect(index?.priority).toBeGreaterThanOrEqual(4);
    expect(index?.description).toContain('customer_id');
    expect(analysis.executionPlan.cost).toBeGreaterThan(0);

    // The span of the statement carries the slow-query event; the captured plan comes as a
    // linked pgpulse.explain span.
    const spans = exporter.getFinishedSpans();
    const statement = spans.find((s) => s.events.some((e) => e.name === 'pgpulse.slow_query'));
    const explain = spans.find((s) => s.name === 'pgpulse.explain');
    // The plan's span links to the very span of the slow statement.
    expect(explain?.links.map((l) => l.context.spanId)).toContain(statement?.spanContext().spanId);
    expect(statement?.spanContext().spanId).toMatch(/^[0-9a-f]{16}$/);
    const planEvent = explain!.events.find((e) => e.name === 'pgpulse.plan')!;
    expect(String(planEvent.attributes?.['pgpulse.plan.findings'])).toContain('seq-scan');

    const everything = JSON.stringify([
      cluster.slowQueries(),
      analysis,
      spans.map((s) => [s.attributes, s.events]),
    ]);
    expect(everything).not.toContain(String(secret));
    expect(everything).not.toContain(password);
  });

  it('a slow write is explained with a plain EXPLAIN and never executed a second time', async () => {
    const before = await sandbox.query<{ total: string }>(
      'primary',
      'SELECT sum(amount) AS total FROM orders WHERE customer_id = 7',
    );
    await cluster.pool.query('UPDATE orders SET amount = amount + 1 WHERE customer_id = 7');
    const afterUpdate = await sandbox.query<{ total: string; xmins: string }>(
      'primary',
      "SELECT sum(amount) AS total, string_agg(xmin::text, ',' ORDER BY id) AS xmins FROM orders WHERE customer_id = 7",
    );
    const entry = await planFor(/^UPDATE orders SET amount/);
    expect(entry.plan!.node).toBe('primary');
    expect(entry.plan!.mode).not.toBe('analyze');
    await sleep(200);
    const later = await sandbox.query<{ total: string; xmins: string }>(
      'primary',
      "SELECT sum(amount) AS total, string_agg(xmin::text, ',' ORDER BY id) AS xmins FROM orders WHERE customer_id = 7",
    );
    // 40 rows have customer_id 7: one +1 each, once.
    expect(Number(afterUpdate[0]!.total) - Number(before[0]!.total)).toBe(40);
    expect(later[0]!.total).toBe(afterUpdate[0]!.total);
    expect(later[0]!.xmins).toBe(afterUpdate[0]!.xmins);
    expect(cluster.slowQueries().explain?.analyzed ?? 0).toBe(0);
  });
});
