import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

class TestReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

describe('OpenTelemetry spans and metrics', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let password: string;
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AsyncLocalStorageContextManager().enable();

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager);
    sandbox = await startCluster({ replicas: 2 });
    password = new URL(sandbox.primary.url).password;
    await sandbox.query(
      'primary',
      "CREATE TABLE accounts (id int PRIMARY KEY, owner text); INSERT INTO accounts VALUES (1, 'ann')",
    );
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      consistency: { level: 'eventual' },
      telemetry: { tracerProvider, meterProvider },
    });
    await cluster.ready();
  });
  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
    context.disable();
  });
  beforeEach(() => exporter.reset());

  const clientSpans = () => exporter.getFinishedSpans().filter((s) => s.kind === 2 /* CLIENT */);

  it('one span per statement, named by db.query.summary, naming the node that really served it', async () => {
    const ports = new Map(sandbox.all.map((n) => [n.port, n]));
    for (let i = 0; i < 6; i++) {
      const { rows } = await cluster.pool.query<{ port: number }>(
        'SELECT inet_server_port() AS port, owner FROM accounts WHERE id = $1',
        [1],
      );
      const span = clientSpans().at(-1)!;
      expect(clientSpans()).toHaveLength(i + 1);
      expect(span.name).toBe('SELECT accounts');
      expect(span.attributes['server.port']).toBe(rows[0]!.port);
      expect(ports.get(rows[0]!.port)!.role).toBe('replica');
      expect(span.attributes['pgpulse.role']).toBe('replica');
      expect(span.attributes).toMatchObject({
        'db.system.name': 'postgresql',
        'db.namespace': 'postgres',
        'db.operation.name': 'SELECT',
        'db.query.summary': 'SELECT accounts',
        'server.address': '127.0.0.1',
        'pgpulse.route.reason': 'replica',
      });
      expect('pgpulse.retry' in span.attributes).toBe(false); // set (true) only on a retry
      expect(span.attributes['db.query.text']).toBe(
        'SELECT inet_server_port() AS port, owner FROM accounts WHERE id = $1',
      );
      expect(typeof span.attributes['pgpulse.replica.lag_ms']).toBe('number');
    }
    await cluster.pool.query("UPDATE accounts SET owner = 'bob' WHERE id = 1");
    const write = clientSpans().at(-1)!;
    expect(write.name).toBe('UPDATE accounts');
    expect(write.attributes['pgpulse.role']).toBe('primary');
    expect(write.attributes['server.port']).toBe(sandbox.primary.port);
    expect(write.attributes['pgpulse.route.reason']).toBe('write');
    // Literals are replaced in db.query.text.
    expect(write.attributes['db.query.text']).toBe('UPDATE accounts SET owner = $1 WHERE id = $2');
  });

  it('errors carry error.type and db.response.status_code', async () => {
    await cluster.pool.query('SELECT * FROM missing_table').catch(() => {});
    const span = clientSpans().at(-1)!;
    expect(span.attributes['error.type']).toBe('42P01');
    expect(span.attributes['db.response.status_code']).toBe('42P01');
    expect(span.status.code).toBe(2);
  });

  it('a parent span of the application is the parent of the statement span', async () => {
    const tracer = tracerProvider.getTracer('app');
    await tracer.startActiveSpan('GET /accounts', async (parent) => {
      await cluster.pool.query('SELECT 1');
      parent.end();
    });
    const spans = exporter.getFinishedSpans();
    const parent = spans.find((s) => s.name === 'GET /accounts')!;
    const child = spans.find((s) => s.name === 'SELECT')!;
    expect(child.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
  });

  it('with @opentelemetry/instrumentation-pg installed there is still one client span per statement', async () => {
    const instrumentation = new PgInstrumentation();
    instrumentation.setTracerProvider(tracerProvider);
    const definition = instrumentation.getModuleDefinitions().find((d) => d.name === 'pg')!;
    definition.patch?.(pg, '8.23.1');
    try {
      expect((pg.Client.prototype.query as { __wrapped?: boolean }).__wrapped).toBe(true);
      // pg's instrumentation alone does make spans (so the check below can fail).
      const raw = new pg.Client({ connectionString: sandbox.primary.url });
      raw.on('error', () => {}); // the server may end it first (sandbox stop, terminate)
      await raw.connect();
      await raw.query('SELECT 2');
      await raw.end();
      expect(clientSpans().length).toBeGreaterThanOrEqual(1);
      exporter.reset();

      for (let i = 0; i < 5; i++)
        await cluster.pool.query('SELECT owner FROM accounts WHERE id = $1', [1]);
      const spans = clientSpans();
      expect(spans).toHaveLength(5);
      expect(spans.every((s) => s.instrumentationScope.name === '@pgpulse/core')).toBe(true);
    } finally {
      definition.unpatch?.(pg, '8.23.1');
    }
  });

  it('passwords and parameter values appear in no span and no metric', async () => {
    const secret = 'card-4111-1111-1111-1111';
    await cluster.pool.query('SELECT owner FROM accounts WHERE owner = $1', [secret]);
    await cluster.pool.query(`SELECT owner FROM accounts WHERE owner = '${secret}'`);
    // Unparseable text: libpg-query's normalize would echo the literal; no db.query.text then.
    await cluster.pool.query(`SELECT owner FROM accounts WHERE owner = '${secret}`).catch(() => {});
    const spans = JSON.stringify(
      exporter.getFinishedSpans().map((s: ReadableSpan) => [s.name, s.attributes, s.events]),
    );
    const { resourceMetrics } = await reader.collect();
    const metricsDump = JSON.stringify(resourceMetrics, (_k, v) =>
      typeof v === 'bigint' ? String(v) : v,
    );
    for (const dump of [spans, metricsDump]) {
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(password);
    }
  });

  it('metrics: duration by node and role, connections by state, routing decisions, breaker state, lag', async () => {
    for (let i = 0; i < 10; i++) await cluster.pool.query('SELECT 1');
    await cluster.pool.query(
      "INSERT INTO accounts VALUES (100 + floor(random() * 1000000)::int, 'm')",
    );
    const { resourceMetrics } = await reader.collect();
    const metric = (name: string) => find(resourceMetrics, name);
    const duration = metric('db.client.operation.duration')!;
    expect(duration.dataPointType).toBe(DataPointType.HISTOGRAM);
    const roles = new Set(duration.dataPoints.map((p) => p.attributes['pgpulse.role']));
    expect(roles).toEqual(new Set(['primary', 'replica']));
    const connections = metric('db.client.connection.count')!;
    expect(
      connections.dataPoints.some((p) => p.attributes['db.client.connection.state'] === 'idle'),
    ).toBe(true);
    const decisions = metric('pgpulse.routing.decisions')!;
    expect(
      decisions.dataPoints.some((p) => p.attributes['pgpulse.route.reason'] === 'replica'),
    ).toBe(true);
    expect(metric('pgpulse.breaker.state')!.dataPoints).toHaveLength(3);
    expect(metric('pgpulse.replica.lag')!.dataPoints).toHaveLength(2);
    // One figure per node pool, like the breaker's.
    expect(metric('db.client.connection.pending_requests')!.dataPoints).toHaveLength(3);
  });
});

function find(resource: ResourceMetrics, name: string) {
  for (const scope of resource.scopeMetrics)
    for (const m of scope.metrics) if (m.descriptor.name === name) return m;
  return undefined;
}
