// Spans and metrics through the SDK the application registers globally (no provider in the
// config), in either order: registered before createCluster, or after it — pgpulse loads
// @opentelemetry/api only once an SDK is registered (#22 item 1), and must still find it then.
import { metrics, trace } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

class TestReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

let sandbox: SandboxCluster;
let cluster: Cluster | undefined;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
}, 60_000);
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
  trace.disable();
  metrics.disable();
});
afterAll(async () => {
  await sandbox?.stop();
});

/** A real SDK (tracer + meter provider), registered in the API's global. */
function registerSdk() {
  const exporter = new InMemorySpanExporter();
  const reader = new TestReader();
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  const spans = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);
  const metric = async (name: string) => find((await reader.collect()).resourceMetrics, name);
  return { spans, metric };
}

const start = () =>
  createCluster({ primary: sandbox.primary.url, replicas: sandbox.replicas.map((r) => r.url) });

describe('a globally registered OpenTelemetry SDK', () => {
  it('registered before createCluster: every statement has its span and its duration', async () => {
    const sdk = registerSdk();
    cluster = start();
    await cluster.pool.query('SELECT 1 AS one');
    await cluster.pool.query('SELECT 2 AS two');
    expect(sdk.spans('SELECT')).toHaveLength(2);
    expect(sdk.spans('SELECT')[0]!.attributes['pgpulse.role']).toBe('primary');
    const duration = await sdk.metric('db.client.operation.duration');
    expect(duration?.dataPoints.length).toBeGreaterThan(0);
    expect(await sdk.metric('db.client.connection.count')).toBeDefined();
  });

  it('registered after createCluster and its first statement: the later statements have their spans and metrics', async () => {
    cluster = start();
    await cluster.pool.query('SELECT 1 AS before_sdk');
    const sdk = registerSdk();
    await cluster.pool.query('SELECT 2 AS after_sdk');
    await cluster.pool.query('SELECT 3 AS after_sdk');
    // Only the two statements that ran once the SDK was there.
    expect(sdk.spans('SELECT')).toHaveLength(2);
    const duration = await sdk.metric('db.client.operation.duration');
    const points = duration?.dataPoints ?? [];
    expect(points.length).toBeGreaterThan(0);
    const count = points.reduce((n, p) => n + (p.value as { count: number }).count, 0);
    expect(count).toBe(2);
    // The observed figures (connections per node pool) are there too.
    expect((await sdk.metric('db.client.connection.count'))?.dataPoints.length).toBeGreaterThan(0);
  });
});

function find(resource: ResourceMetrics, name: string) {
  for (const scope of resource.scopeMetrics)
    for (const m of scope.metrics) if (m.descriptor.name === name) return m;
  return undefined;
}
