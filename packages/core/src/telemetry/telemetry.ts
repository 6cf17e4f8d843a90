import type {
  Attributes,
  Counter,
  Histogram,
  MeterProvider,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';
import pg from 'pg';
import type { CapturedPlan } from '../analysis/index.js';
import type {
  SlowMark,
  StatementEvent,
  StatementListener,
  StatementOutcome,
} from '../routing/index.js';
import { sqlStateOf } from '../sql/index.js';
import type { ClusterNode } from '../topology/index.js';
import { otelApi, otelRegistered, outerContext } from '../tracing/index.js';
import { QueryTexts } from './query-text.js';
import { summarize } from './summary.js';

export interface TelemetryOptions {
  /** Default: the global tracer provider (whatever SDK the application registered). */
  readonly tracerProvider?: TracerProvider;
  /** Default: the global meter provider. */
  readonly meterProvider?: MeterProvider;
  /**
   * With `@opentelemetry/instrumentation-pg` also installed, pgpulse's span is the one client
   * span per statement and pg's own span under it is suppressed (`suppress`, the default), or
   * kept as a child (`nest`).
   */
  readonly pgInstrumentation?: 'suppress' | 'nest';
}

// The SDK's suppression flag: a context key made with the same description is the same key.
const SUPPRESS_TRACING = 'OpenTelemetry SDK Context Key SUPPRESS_TRACING';
// @opentelemetry/api's SpanKind and SpanStatusCode (numeric enums, fixed by the spec).
const SPAN_KIND_INTERNAL = 0;
const SPAN_KIND_CLIENT = 2;
const SPAN_STATUS_ERROR = 2;
const SCOPE = '@pgpulse/core';
const BREAKER_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

/**
 * Spans and metrics for every routed statement, through @opentelemetry/api only: the user
 * brings the SDK. Without one registered (or configured), nothing is recorded and the API is
 * not loaded.
 */
export class Telemetry implements StatementListener {
  private tracerOf: Tracer | undefined;
  private instruments: { duration: Histogram; slow: Counter } | undefined;
  private readonly texts = new QueryTexts();
  private readonly metricSets = new Map<string, Attributes>();

  constructor(
    private readonly nodes: readonly ClusterNode[],
    private readonly routingCounts: () => ReadonlyMap<string, number>,
    private readonly options: TelemetryOptions = {},
  ) {
    // A provider in the config, or an SDK already registered: set up now. Otherwise the API is
    // not even loaded until an SDK registers (checked on each statement, so one registered
    // after createCluster still gets every later statement's span and metrics).
    this.tracer();
    this.metrics();
  }

  /** The tracer, once there is a tracer provider to take it from. */
  private tracer(): Tracer | undefined {
    if (this.tracerOf) return this.tracerOf;
    const provider =
      this.options.tracerProvider ??
      (otelRegistered('trace') ? otelApi().trace.getTracerProvider() : undefined);
    this.tracerOf = provider?.getTracer(SCOPE);
    return this.tracerOf;
  }

  /** The instruments, created (once) when there is a meter provider to create them on. */
  private metrics(): { duration: Histogram; slow: Counter } | undefined {
    if (this.instruments) return this.instruments;
    const provider =
      this.options.meterProvider ??
      (otelRegistered('metrics') ? otelApi().metrics.getMeterProvider() : undefined);
    if (!provider) return undefined;
    const meter = provider.getMeter(SCOPE);
    const duration = meter.createHistogram('db.client.operation.duration', {
      unit: 's',
      description: 'Duration of database client operations, per node and role',
      advice: {
        explicitBucketBoundaries: [
          0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
        ],
      },
    });
    const decisions = meter.createObservableCounter('pgpulse.routing.decisions', {
      description: 'Statements routed, by routing reason (counted by the router, observed here)',
    });
    const slow = meter.createCounter('pgpulse.slow_queries', {
      description: 'Statements slower than slowQuery.thresholdMs',
    });
    const connections = meter.createObservableUpDownCounter('db.client.connection.count', {
      description: 'Open connections per node pool, by state',
    });
    const pending = meter.createObservableUpDownCounter('db.client.connection.pending_requests', {
      description: 'Acquires waiting for a connection, per node pool',
    });
    const lag = meter.createObservableGauge('pgpulse.replica.lag', {
      unit: 'ms',
      description: 'Replica lag behind the primary',
    });
    const lagBytes = meter.createObservableGauge('pgpulse.replica.lag_bytes', {
      unit: 'By',
      description: 'Replica WAL not yet replayed',
    });
    const breaker = meter.createObservableGauge('pgpulse.breaker.state', {
      description: 'Circuit breaker per node: 0 closed, 1 half-open, 2 open',
    });
    meter.addBatchObservableCallback(
      (result) => {
        for (const node of this.nodes) {
          const figures = node.pool.figures();
          const pool = { 'db.client.connection.pool.name': node.name };
          result.observe(connections, figures.idle, {
            ...pool,
            'db.client.connection.state': 'idle',
          });
          result.observe(connections, figures.inUse, {
            ...pool,
            'db.client.connection.state': 'used',
          });
          result.observe(pending, figures.waiting, pool);
          const who = { 'pgpulse.node': node.name, 'pgpulse.role': node.role };
          result.observe(breaker, BREAKER_VALUE[node.breaker.state], who);
          if (node.role === 'replica' && node.health.lagMs !== undefined) {
            result.observe(lag, node.health.lagMs, who);
            result.observe(lagBytes, node.health.lagBytes ?? 0, who);
          }
        }
        for (const [reason, count] of this.routingCounts()) {
          result.observe(decisions, count, { 'pgpulse.route.reason': reason });
        }
      },
      [connections, pending, lag, lagBytes, breaker, decisions],
    );
    this.instruments = { duration, slow };
    return this.instruments;
  }

  /**
   * Only with @opentelemetry/instrumentation-pg patched in does the round trip need a context of
   * its own (to suppress pg's duplicate span, or to parent it); otherwise nothing runs inside
   * the statement's span and it is recorded whole in finished(), which costs no context switch.
   */
  around<T>(_event: StatementEvent, run: () => Promise<T>): Promise<T> {
    // Without a context manager no context reaches pg's span: nothing to set.
    if (!pgInstrumented() || !otelRegistered('context')) return run();
    const { context, createContextKey } = otelApi();
    const ctx = context.active();
    if (this.options.pgInstrumentation === 'nest') {
      // pg's span becomes a child of a span that does not exist yet: give it our parent instead.
      return context.with(ctx, run);
    }
    return context.with(ctx.setValue(createContextKey(SUPPRESS_TRACING), true), run);
  }

  /**
   * Its part of the statement chain: records every statement's span and duration. A statement
   * the slow-query log marked (`event.slow`, set before this listener) gets a
   * `pgpulse.slow_query` event, with the plan's findings when a plan of its fingerprint is
   * known, and its span's context is left on the mark for the plan captured later.
   */
  finished(event: StatementEvent, outcome: StatementOutcome): void {
    const tracer = this.tracer();
    const instruments = this.metrics();
    // No SDK registered (and none configured): nothing to record, and the API stays unloaded.
    if (!tracer && !instruments) return;
    const slow = event.slow;
    const node = event.node;
    const { operation, summary } = summarize(event.request.text);
    const endTime = performance.timeOrigin + performance.now();
    const error = outcome.error;
    const code = error === undefined ? undefined : sqlStateOf(error);
    const errorType = error === undefined ? undefined : (code ?? errorName(error));
    if (tracer) {
      const span = tracer.startSpan(
        summary,
        { kind: SPAN_KIND_CLIENT, startTime: endTime - outcome.durationMs },
        otelApi().context.active(),
      );
      // Without an SDK (or when the sampler drops it) the span records nothing: build no attributes.
      if (span.isRecording()) span.setAttributes(this.spanAttributes(event, operation, summary));
      if (errorType !== undefined) {
        span.setAttribute('error.type', errorType);
        if (code) span.setAttribute('db.response.status_code', code);
        span.setStatus({
          code: SPAN_STATUS_ERROR,
          message: error instanceof Error ? error.message : String(error),
        });
      }
      if (slow) span.addEvent('pgpulse.slow_query', slowAttributes(slow), endTime);
      span.end(endTime);
      if (slow) slow.spanContext = span.spanContext();
    }
    if (instruments) {
      if (slow) instruments.slow.add(1, { 'pgpulse.node': node.name, 'pgpulse.role': node.role });
      instruments.duration.record(
        outcome.durationMs / 1000,
        this.metricAttributes(node, operation, errorType),
      );
    }
  }

  /** A read served by the result cache: no statement ran, so a short span says so. */
  cacheHit(text: string): void {
    const tracer = this.tracer();
    if (!tracer) return;
    const { summary } = summarize(text);
    const span = tracer.startSpan(summary, {
      kind: SPAN_KIND_CLIENT,
      attributes: { 'db.system.name': 'postgresql', 'pgpulse.cache': 'hit' },
    });
    span.end();
  }

  /**
   * A plan captured after its statement's span ended: recorded as a short `pgpulse.explain` span
   * linked to that statement's span, with the plan and findings as an event.
   */
  planCaptured(slow: SlowMark & { plan: CapturedPlan }): void {
    const tracer = this.tracer();
    if (!tracer) return;
    const statement = slow.spanContext;
    const span = tracer.startSpan(
      'pgpulse.explain',
      {
        kind: SPAN_KIND_INTERNAL,
        attributes: {
          'pgpulse.fingerprint': slow.fingerprint,
          'pgpulse.node': slow.plan.node,
          'pgpulse.explain.mode': slow.plan.mode,
        },
        ...(statement ? { links: [{ context: statement }] } : {}),
      },
      // The capture runs untraced (its EXPLAIN is pgpulse's own round trip); its span is not.
      outerContext(),
    );
    span.addEvent('pgpulse.plan', slowAttributes(slow));
    span.end();
  }

  private spanAttributes(event: StatementEvent, operation: string, summary: string): Attributes {
    const node = event.node;
    const attributes: Attributes = {
      'db.system.name': 'postgresql',
      'db.namespace': node.config.database,
      'db.operation.name': operation,
      'db.query.summary': summary,
      'server.address': node.host,
      'server.port': node.port,
      'pgpulse.node': node.name,
      'pgpulse.role': node.role,
      'pgpulse.route.reason': event.reason,
    };
    // Text the classifier could not parse gets no db.query.text (it could echo a literal).
    const text = this.texts.sanitized(event.request.text, event.cls.reason !== 'unparseable');
    if (text !== null) attributes['db.query.text'] = text;
    if (event.reason === 'retry') attributes['pgpulse.retry'] = true;
    if (event.request.cache) attributes['pgpulse.cache'] = event.request.cache;
    if (event.prepared) attributes['pgpulse.prepared'] = event.prepared;
    // A replica refused it as a write; this is its one retry on the primary.
    if (event.reason === 'replica-refused') attributes['pgpulse.replica_refused'] = true;
    if (node.role === 'replica' && node.health.lagMs !== undefined)
      attributes['pgpulse.replica.lag_ms'] = node.health.lagMs;
    return attributes;
  }

  /** Metric attribute sets are few (node x role x operation x outcome): reuse the objects. */
  private metricAttributes(
    node: ClusterNode,
    operation: string,
    errorType: string | undefined,
  ): Attributes {
    const key = `${node.name}\0${node.role}\0${operation}\0${errorType ?? ''}`;
    let attributes = this.metricSets.get(key);
    if (!attributes) {
      attributes = {
        'db.system.name': 'postgresql',
        'db.operation.name': operation,
        'pgpulse.node': node.name,
        'pgpulse.role': node.role,
        ...(errorType === undefined ? {} : { 'error.type': errorType }),
      };
      if (this.metricSets.size < 10_000) this.metricSets.set(key, attributes);
    }
    return attributes;
  }
}

const PLAN_ATTRIBUTE_LIMIT = 16_384;

function slowAttributes(slow: SlowMark): Attributes {
  const attributes: Attributes = {
    'pgpulse.fingerprint': slow.fingerprint,
    'pgpulse.slow.threshold_ms': slow.thresholdMs,
    'db.query.text': slow.query,
  };
  if (slow.plan) {
    attributes['pgpulse.plan.findings'] = slow.plan.findings.map(
      (f) => `${f.severity} ${f.kind}: ${f.message}`,
    );
    // The plan is redacted (literals masked) by the capture; bounded so a span stays small.
    attributes['pgpulse.plan.json'] = JSON.stringify(slow.plan.plan).slice(0, PLAN_ATTRIBUTE_LIMIT);
  }
  return attributes;
}

/**
 * The global meter provider when an SDK registered one, else undefined (the API not loaded).
 * For the parts that create their instruments once (monitoring's alerts, the result cache), as
 * `metrics.getMeterProvider()` was: a provider registered later does not reach them.
 */
export function registeredMeterProvider(): MeterProvider | undefined {
  return otelRegistered('metrics') ? otelApi().metrics.getMeterProvider() : undefined;
}

/** instrumentation-pg wraps pg.Client.prototype.query with shimmer, which marks the wrapper. */
function pgInstrumented(): boolean {
  return (pg.Client.prototype.query as { __wrapped?: boolean }).__wrapped === true;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : 'Error';
}
