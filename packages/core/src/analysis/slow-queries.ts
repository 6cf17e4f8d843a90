import type { ResolvedSlowQueryConfig } from '../config/index.js';
import type {
  Classifier,
  SlowMark,
  StatementEvent,
  StatementListener,
  StatementOutcome,
} from '../routing/index.js';
import { untraced } from '../tracing/index.js';
import { ExplainCapture } from './explain-capture.js';
import type {
  CapturedPlan,
  ConnectionProvider,
  ExplainCaptureStats,
} from './explain-capture-types.js';
import { SlowQueryLog } from './slow-query-log.js';
import type { SlowQueryEntry } from './slow-query-log-types.js';

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

/**
 * Where a plan captured after its statement finished is recorded (telemetry: a span linked to
 * the statement's span, whose context the mark then holds).
 */
export interface PlanRecorder {
  /** `slow.spanContext` is the statement's span, when telemetry recorded one. */
  planCaptured(slow: SlowMark & { plan: CapturedPlan }): void;
}

/**
 * The cluster's slow-query side, one listener of the statement chain: every statement over the
 * threshold is recorded by fingerprint and marked (`event.slow`) for the listeners after it
 * (telemetry puts a slow-query event on its span), and an EXPLAIN is queued (bounded,
 * rate-limited, off the query path) on the node that ran it; the plan goes to the recorder.
 */
export class SlowQueries implements StatementListener {
  private readonly log: SlowQueryLog;
  private readonly capture: ExplainCapture<SlowMark> | undefined;

  constructor(
    private readonly config: ResolvedSlowQueryConfig,
    classifier: Classifier,
    connect: ConnectionProvider,
    plans: PlanRecorder | undefined,
  ) {
    // A quarter for the log, a quarter for queued texts, half for plans (see maxBytes).
    const quarter = Math.max(1, Math.floor(config.maxBytes / 4));
    this.log = new SlowQueryLog({ captureParams: config.captureParams, maxBytes: quarter });
    this.capture = config.explain
      ? new ExplainCapture<SlowMark>({
          connect,
          queueSize: config.queueSize,
          minIntervalMs: config.minExplainIntervalMs,
          maxQueuedBytes: quarter,
          maxPlanBytes: Math.max(1, config.maxBytes - 2 * quarter),
          analyze: config.explainAnalyze,
          classifier,
          onPlan: (job, plan) => {
            const mark = job.context;
            if (mark) plans?.planCaptured({ ...mark, plan });
          },
        })
      : undefined;
  }

  /** Its part of the statement chain: a statement over the threshold is logged and marked. */
  finished(event: StatementEvent, outcome: StatementOutcome): void {
    if (outcome.durationMs < this.config.thresholdMs) return;
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
    const mark: SlowMark = {
      fingerprint: recorded.fingerprint,
      query: recorded.normalized,
      thresholdMs: this.config.thresholdMs,
      plan: this.capture?.get(recorded.fingerprint),
      // Telemetry, after this listener, records the span and leaves its context here; the
      // EXPLAIN below never answers before that (it is queued and waits for a connection).
      spanContext: undefined,
    };
    event.slow = mark;
    // The capture's EXPLAIN round trips are pgpulse's own: no span in the user's trace.
    untraced(() =>
      this.capture?.enqueue({
        sql: request.text,
        ...params,
        node: node.name,
        fingerprint: recorded.fingerprint,
        kind: event.cls.kind,
        context: mark,
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
