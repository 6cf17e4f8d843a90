import { format, inspect } from 'node:util';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

let sandbox: SandboxCluster;
let cluster: Cluster;
let password: string;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 2, auth: 'scram-sha-256' });
  password = decodeURIComponent(new URL(sandbox.primary.url).password);
  expect(password.length).toBeGreaterThan(5);
}, 60_000);

afterAll(async () => {
  await cluster?.close();
  await sandbox?.stop();
});

/** Every way a user or a logger may turn an object into text. */
function renderings(value: unknown): string[] {
  const out: string[] = [];
  out.push(format('%o', value));
  out.push(format('%O', value));
  out.push(format('%j', value));
  out.push(inspect(value));
  out.push(inspect(value, { showHidden: true, depth: Number.POSITIVE_INFINITY }));
  out.push(inspect(value, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }));
  try {
    out.push(JSON.stringify(value) ?? '');
  } catch (err) {
    out.push(`JSON threw: ${(err as Error).message}`);
  }
  out.push(String(value));
  return out;
}

function leaks(values: readonly unknown[]): number {
  let count = 0;
  for (const value of values) {
    for (const text of renderings(value)) count += text.split(password).length - 1;
  }
  return count;
}

describe('no inspection form reaches the password (#11 item 2)', () => {
  it('cluster, config, pool, checked-out clients, events and errors: 0 occurrences', async () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 100, timeoutMs: 1000 },
      telemetry: { tracerProvider },
    });
    const events: unknown[] = [];
    for (const name of ['breaker', 'node-down', 'node-up', 'lag', 'connection-error'] as const) {
      cluster.on(name, (event: unknown) => events.push(event));
    }
    await cluster.ready();
    await cluster.pool.query('SELECT 1');
    const client = await cluster.pool.connect();
    await client.query('SELECT 1');
    const errors: unknown[] = [];
    await cluster.pool.query('SELECT * FROM no_such_table').catch((err) => errors.push(err));
    const acquired = await cluster.acquire();
    // A cluster with a wrong host: its connection errors must not carry the password either.
    const broken = createCluster({
      primary: sandbox.primary.url.replace(/:(\d+)\//, ':1/'),
      health: { intervalMs: 100, timeoutMs: 300 },
      pool: { connectTimeoutMs: 300, acquireTimeoutMs: 500 },
    });
    await broken.ready().catch((err) => errors.push(err));
    await broken.pool.query('SELECT 1').catch((err) => errors.push(err));
    expect(errors.length).toBeGreaterThanOrEqual(2);

    const subjects = [
      cluster,
      cluster.config,
      cluster.pool,
      cluster.nodes,
      cluster.stats(),
      client,
      acquired,
      acquired.client,
      events,
      errors,
      broken,
    ];
    const found = leaks(subjects);
    if (found > 0) {
      // Name the culprits: which subject, which rendering.
      const detail = subjects.map(
        (s, i) =>
          `${i}:${renderings(s)
            .map((t) => t.split(password).length - 1)
            .join('/')}`,
      );
      console.log(detail.join(' '));
    }
    client.release();
    acquired.release();
    await broken.close();
    expect(found).toBe(0);
  }, 60_000);

  it('JSON.stringify(cluster.config) works with a tracer provider (#11 item 11)', () => {
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())],
    });
    tracerProvider.getTracer('app');
    const c = createCluster({
      primary: sandbox.primary.url,
      telemetry: { tracerProvider, meterProvider: undefined },
    });
    const json = JSON.parse(JSON.stringify(c.config)) as Record<string, unknown>;
    expect(json.primary).toMatchObject({ name: expect.any(String), password: '***' });
    expect(JSON.stringify(json)).not.toContain(password);
    void c.close();
  });
});
