// Throughput with OpenTelemetry spans + metrics (real SDK, batch span processor, in-memory
// exporter) and slow-query capture on, against the same cluster set-up with both off, on the
// same sandbox primary, interleaved. Goal: within 5 %. Run: pnpm bench:telemetry (the built
// bundle, bench/built.sh; PGPULSE_BENCH_SOURCE=1: the TypeScript sources)
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { createCluster } from '@pgpulse/core';
import { startCluster } from '@pgpulse/sandbox';
import pg from 'pg';
import { compare, type Workload } from './lib/measure.js';
import { measuredForm } from './lib/measured-form.js';

class QuietReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const PAIRS = Number(process.env.PAIRS ?? 6);
const SECONDS = Number(process.env.SECONDS ?? 2);
const WORKERS = 8;

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [
    new BatchSpanProcessor(exporter, {
      maxQueueSize: 65_536,
      maxExportBatchSize: 4096,
      scheduledDelayMillis: 200,
    }),
  ],
});
const reader = new QuietReader();
const meterProvider = new MeterProvider({ readers: [reader] });
// The in-memory exporter keeps every span; empty it now and then so memory stays flat.
const trim = setInterval(() => exporter.reset(), 1000);

const sandbox = await startCluster({ replicas: 0 });
try {
  await sandbox.query(
    'primary',
    `CREATE TABLE bench_items (id int PRIMARY KEY, name text, score int);
     INSERT INTO bench_items SELECT i, 'item ' || i, i % 100 FROM generate_series(1, 10000) i;`,
  );
  const base = { primary: sandbox.primary.url, pool: { maxSize: WORKERS } };
  const off = createCluster({
    ...base,
    telemetry: { enabled: false },
    slowQuery: { thresholdMs: 1e9, explain: false },
  });
  const on = createCluster({
    ...base,
    telemetry: { tracerProvider, meterProvider },
    slowQuery: { thresholdMs: 50, explain: true },
  });
  // The same with automatic prepared statements (off by default, see docs/benchmarks.md).
  const onPrepared = createCluster({
    ...base,
    telemetry: { tracerProvider, meterProvider },
    slowQuery: { thresholdMs: 50, explain: true },
    preparedStatements: { enabled: true },
  });
  // Spans only, as instrumentation-pg is set up below (a tracer provider, no meter provider):
  // the same signals on both sides of the anchor.
  const tracesOnly = createCluster({
    ...base,
    telemetry: { tracerProvider },
    slowQuery: { thresholdMs: 50, explain: true },
  });
  const tracesOnlyPrepared = createCluster({
    ...base,
    telemetry: { tracerProvider },
    slowQuery: { thresholdMs: 50, explain: true },
    preparedStatements: { enabled: true },
  });
  await Promise.all([
    off.ready(),
    on.ready(),
    onPrepared.ready(),
    tracesOnly.ready(),
    tracesOnlyPrepared.ready(),
  ]);
  const select: Workload = (q, i) =>
    q('SELECT id, name, score FROM bench_items WHERE id = $1', [(i % 10_000) + 1]);
  await compare(
    'warm-up',
    ['off', 'on'],
    (s, p) => off.pool.query(s, p),
    (s, p) => on.pool.query(s, p),
    select,
    {
      pairs: 1,
      seconds: 1,
      workers: WORKERS,
    },
  );
  await compare(
    'select',
    ['telemetry off', 'telemetry on'],
    (s, p) => off.pool.query(s, p),
    (s, p) => on.pool.query(s, p),
    select,
    {
      pairs: PAIRS,
      seconds: SECONDS,
      workers: WORKERS,
    },
  );
  // The real anchor: raw pg.Pool with @opentelemetry/instrumentation-pg, same SDK, same run,
  // against cluster.pool with its own spans (pg's patch stays in: pgpulse suppresses it).
  const instrumentation = new PgInstrumentation();
  instrumentation.setTracerProvider(tracerProvider);
  const definition = instrumentation.getModuleDefinitions().find((d) => d.name === 'pg');
  const version = (await import('pg/package.json', { with: { type: 'json' } })).default.version;
  definition?.patch?.(pg, version);
  const raw = new pg.Pool({ connectionString: sandbox.primary.url, max: WORKERS });
  try {
    const anchored = await compare(
      'otel',
      ['pg+instr-pg', 'pgpulse+otel'],
      (s, p) => raw.query(s, p),
      (s, p) => on.pool.query(s, p),
      select,
      { pairs: PAIRS, seconds: SECONDS, workers: WORKERS },
    );
    const prepared = await compare(
      'otel, prepared',
      ['pg+instr-pg', 'pgpulse+otel+prepared'],
      (s, p) => raw.query(s, p),
      (s, p) => onPrepared.pool.query(s, p),
      select,
      { pairs: PAIRS, seconds: SECONDS, workers: WORKERS },
    );
    const spans = await compare(
      'otel, spans only',
      ['pg+instr-pg', 'pgpulse spans'],
      (s, p) => raw.query(s, p),
      (s, p) => tracesOnly.pool.query(s, p),
      select,
      { pairs: PAIRS, seconds: SECONDS, workers: WORKERS },
    );
    const spansPrepared = await compare(
      'otel, spans only, prepared',
      ['pg+instr-pg', 'pgpulse spans+prepared'],
      (s, p) => raw.query(s, p),
      (s, p) => tracesOnlyPrepared.pool.query(s, p),
      select,
      { pairs: PAIRS, seconds: SECONDS, workers: WORKERS },
    );
    for (const [label, result] of [
      ['pgpulse with telemetry (spans and metrics)', anchored],
      ['pgpulse with telemetry (spans and metrics) and automatic preparation', prepared],
      ['pgpulse with spans only (the signals instrumentation-pg records here)', spans],
      ['pgpulse with spans only and automatic preparation', spansPrepared],
    ] as const) {
      const ratio = result.throughputRatio;
      console.log(
        `${label} / raw pg + instrumentation-pg: ${ratio.toFixed(3)} (goal >= 1.20: ${ratio >= 1.2 ? 'met' : 'NOT met'})`,
      );
    }
  } finally {
    definition?.unpatch?.(pg, version);
    await raw.end();
  }
  await Promise.all(
    [off, on, onPrepared, tracesOnly, tracesOnlyPrepared].map((cluster) => cluster.close()),
  );
  console.log(measuredForm(['@pgpulse/core']));
} finally {
  clearInterval(trim);
  await sandbox.stop();
  await tracerProvider.shutdown();
}
