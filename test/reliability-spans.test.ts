import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep, waitUntil } from '@pgpulse/sandbox/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

/**
 * #11 item 13: pgpulse's own round trips (probes, connects, pre-pings, EXPLAIN capture, catalog
 * reads) must never be spans in the user's traces, however often they run: they run with
 * tracing suppressed, so the count cannot depend on timing. Probes every 20 ms and an EXPLAIN
 * for every statement make sure plenty of them happen while the statements run.
 */
describe('#11 item 13: with instrumentation-pg, no span of pgpulse’s own work', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  const instrumentation = new PgInstrumentation();
  const definition = instrumentation.getModuleDefinitions().find((d) => d.name === 'pg')!;

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager);
    instrumentation.setTracerProvider(tracerProvider);
    definition.patch?.(pg, '8.23.1');
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query('primary', 'CREATE TABLE items (id int PRIMARY KEY)');
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      consistency: { level: 'eventual' },
      health: { intervalMs: 20, timeoutMs: 2000 },
      // Every statement is "slow", so an EXPLAIN is captured on its node, and every lease pre-pings.
      slowQuery: { thresholdMs: 0, minExplainIntervalMs: 0 },
      pool: { prePingAfterIdleMs: 0 },
      telemetry: { tracerProvider },
    });
    await cluster.ready();
  });

  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
    definition.unpatch?.(pg, '8.23.1');
    context.disable();
  });

  it('only the statements the application ran are client spans', async () => {
    expect((pg.Client.prototype.query as { __wrapped?: boolean }).__wrapped).toBe(true);
    exporter.reset();
    const roundsBefore = cluster.stats().probeRounds;
    const tracer = tracerProvider.getTracer('app');
    await tracer.startActiveSpan('GET /items', async (parent) => {
      for (let i = 0; i < 10; i++) {
        await cluster.pool.query('SELECT id FROM items WHERE id = $1', [i]);
        await cluster.pool.query('INSERT INTO items VALUES ($1)', [i]);
        // Spreads the statements over several probe rounds, so probes run between them.
        await sleep(30);
      }
      parent.end();
    });
    // Let probe rounds and EXPLAIN captures run after the statements too.
    await waitUntil(() => cluster.stats().probeRounds >= roundsBefore + 10, {
      timeoutMs: 30_000,
      message: () => `10 probe rounds did not run (${cluster.stats().probeRounds - roundsBefore})`,
    });
    // A window, not a wait: spans that must not appear (from EXPLAIN captures) have time to.
    await sleep(200);
    const client = exporter.getFinishedSpans().filter((s) => s.kind === 2 /* CLIENT */);
    const foreign = client.filter((s) => s.instrumentationScope.name !== '@pgpulse/core');
    console.log(
      `client spans: ${client.length} for 20 statements, ${foreign.length} from pg's instrumentation ` +
        `(${cluster.stats().probeRounds - roundsBefore} probe rounds meanwhile)`,
      foreign.slice(0, 3).map((s) => s.name),
    );
    expect(foreign.map((s) => s.name)).toEqual([]);
    expect(client).toHaveLength(20);
    const parentId = exporter
      .getFinishedSpans()
      .find((s) => s.name === 'GET /items')!
      .spanContext().spanId;
    expect(client.every((s) => s.parentSpanContext?.spanId === parentId)).toBe(true);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
