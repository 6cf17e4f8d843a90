import type { SpanContext } from '@opentelemetry/api';
import {
  type CapturedPlan,
  type ConnectionProvider,
  ExplainCapture,
  type ExplainCaptureStats,
  type SlowQueryEntry,
  SlowQueryLog,
} from '../analysis/index.js';
import type { ResolvedSlowQueryConfig } from '../config/index.js';
import type { Classifier, StatementEvent, StatementOutcome } from '../routing/index.js';
import type { SlowStatement, Telemetry } from '../telemetry/index.js';
import { untraced } from '../tracing/index.js';

/**
 * What `cluster.slowQueries()` returns: the statements over the threshold with their captured
 * plans, the EXPLAIN queue and the memory held.
 */
export interface SlowQueryReport {
  readonly thresholdMs: number;
  readonly queries: readonly (SlowQueryEntry & { readonly plan: CapturedPlan | undefined })[];
  /** Fingerprints dropped from the bounded log. */
  readonly evictions: number;
  /** The EXPLAIN queue: accepted, dropped (queue full), rate-limited, completed, failed. */
  readonly explain: ExplainCaptureStats | undefined;
  /** Memory held, by part, within `slowQuery.maxBytes` (strings at 2 bytes a character). */
  readonly bytes: {
    readonly log: number;
    readonly explainQueue: number;
    readonly plans: number;
    readonly total: number;
    readonly max: number;
  };
}

type JobContext = { readonly spanContext: SpanContext | undefined; readonly slow: SlowStatement };

/**
 * The cluster's slow-query side: every statement over the threshold is recorded by
 * fingerprint, its span gets a slow-query event, and an EXPLAIN is queued (bounded, rate-limited,
 * off the query path) on the node that ran it; the plan comes back as a linked span.
 */
export class SlowQueries {
  private readonly log: SlowQueryLog;
  private readonly capture: ExplainCapture<JobContext> | undefined;

  constructor(
    private readonly config: ResolvedSlowQueryConfig,
    classifier: Classifier,
    connect: ConnectionProvider,
    private readonly telemetry: Telemetry | undefined,
  ) {
    // A quarter for the log, a quarter for queued texts, half for plans (see maxBytes).
    const quarter = Math.max(1, Math.floor(config.maxBytes / 4));
    this.log = new SlowQueryLog({ captureParams: config.captureParams, maxBytes: quarter });
    this.capture = config.explain
      ? new ExplainCapture<JobContext>({
          connect,
          queueSize: config.queueSize,
          minIntervalMs: config.minExplainIntervalMs,
          maxQueuedBytes: quarter,
          maxPlanBytes: Math.max(1, config.maxBytes - 2 * quarter),
          analyze: config.explainAnalyze,
          classifier,
          onPlan: (job, plan) => {
            if (job.context)
              telemetry?.planCaptured(job.context.spanContext, { ...job.context.slow, plan });
          },
        })
      : undefined;
  }

  /** Called for every finished statement; records its span (and more when it was slow). */
  finished(event: StatementEvent, outcome: StatementOutcome): void {
    if (outcome.durationMs < this.config.thresholdMs) {
      this.telemetry?.finished(event, outcome);
      return;
    }
    const { node, request } = event;
    const values = request.config.values as readonly unknown[] | undefined;
    const params = values ? { params: values } : {};
    const recorded = this.log.record({
      sql: request.text,
      ...params,
      durationMs: outcome.durationMs,
      rows: outcome.rowCount ?? null,
      node: node.name,
      role: node.role,
    });
    const slow: SlowStatement = {
      fingerprint: recorded.fingerprint,
      query: recorded.normalized,
      thresholdMs: this.config.thresholdMs,
      plan: this.capture?.get(recorded.fingerprint),
    };
    const spanContext = this.telemetry?.finished(event, outcome, slow);
    // The capture's EXPLAIN round trips are pgpulse's own: no span in the user's trace.
    untraced(() =>
      this.capture?.enqueue({
        sql: request.text,
        ...params,
        node: node.name,
        fingerprint: recorded.fingerprint,
        kind: event.cls.kind,
        context: { spanContext, slow },
      }),
    );
  }

  report(): SlowQueryReport {
    const plans = new Map((this.capture?.results() ?? []).map((p) => [p.fingerprint, p]));
    return {
      thresholdMs: this.config.thresholdMs,
      queries: this.log
        .entries()
        .map((entry) => ({ ...entry, plan: plans.get(entry.fingerprint) })),
      evictions: this.log.evictions,
      explain: this.capture?.stats(),
      bytes: this.bytes(),
    };
  }

  bytes(): SlowQueryReport['bytes'] {
    const held = this.capture?.bytes() ?? { queued: 0, plans: 0 };
    const log = this.log.bytes;
    return {
      log,
      explainQueue: held.queued,
      plans: held.plans,
      total: log + held.queued + held.plans,
      max: this.config.maxBytes,
    };
  }

  /** Resolves once no EXPLAIN is queued or running (tests, benches). */
  drained(): Promise<void> {
    return this.capture?.drain() ?? Promise.resolve();
  }

  close(): Promise<void> {
    return this.capture?.close() ?? Promise.resolve();
  }
}
