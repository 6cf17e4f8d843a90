import type { ExplainError } from '../errors/index.js';
import type { Classifier } from '../routing/index.js';
import type { ConnectionLease } from '../sql/index.js';
import type { ExplainMode } from './explain-runner.js';
import type { ExplainResult } from './plan.js';
import type { PlanAnalyzerOptions, PlanFinding } from './plan-analyzer.js';

// What ExplainCapture takes and gives: its jobs, its captured plans, its options and counters.

/** A connection on one node, borrowed for one EXPLAIN. */
export type ConnectionProvider = (nodeName: string) => Promise<ConnectionLease>;

export interface ExplainJob<Context = unknown> {
  /** The statement as it ran (its literals are never stored or delivered). */
  readonly sql: string;
  readonly params?: readonly unknown[];
  /** The node that ran it; the plan is taken there. */
  readonly node: string;
  readonly fingerprint: string;
  /**
   * The router's classification, if known. ANALYZE needs both this (when given) and the
   * capture's own classifier to say 'read'.
   */
  readonly kind?: 'read' | 'write';
  /** Passed back untouched to the callbacks, e.g. a span to link the plan to. */
  readonly context?: Context;
}

/** What the callbacks see of a job: no parameter values. */
export interface ExplainJobInfo<Context = unknown> {
  /** The raw text, literals included: telemetry should show the slow-query log's normalized text. */
  readonly sql: string;
  readonly node: string;
  readonly fingerprint: string;
  readonly kind?: 'read' | 'write';
  readonly paramCount: number;
  readonly context?: Context;
}

/**
 * An EXPLAIN plan captured off the query path for a slow statement, with its findings; literals
 * never stored.
 */
export interface CapturedPlan {
  readonly fingerprint: string;
  readonly node: string;
  readonly mode: ExplainMode;
  /** Epoch ms. */
  readonly capturedAt: number;
  /** Time the EXPLAIN round trips took, ms. */
  readonly durationMs: number;
  /** Literals masked unless `redact: false` (see redactPlan). */
  readonly plan: ExplainResult;
  readonly findings: readonly PlanFinding[];
}

export type EnqueueOutcome = 'queued' | 'rate-limited' | 'dropped' | 'closed';

/**
 * Counters of the background EXPLAIN queue: queued, accepted, dropped when full, rate-limited,
 * completed and failed.
 */
export interface ExplainCaptureStats {
  /** Jobs waiting now. */
  readonly queued: number;
  readonly accepted: number;
  /** Refused because the queue was full (invariant 8). */
  readonly dropped: number;
  /** Refused because the fingerprint was captured less than `minIntervalMs` ago. */
  readonly rateLimited: number;
  readonly completed: number;
  readonly failed: number;
  /** Completed with EXPLAIN ANALYZE. */
  readonly analyzed: number;
  /** Not explainable (DDL, utility, multi-statement, unparseable). */
  readonly skipped: number;
  /** Queued jobs abandoned by close(). */
  readonly cancelled: number;
}

export interface ExplainCaptureOptions<Context = unknown> {
  readonly connect: ConnectionProvider;
  /** Jobs waiting at most; more are dropped and counted. Default 100. */
  readonly queueSize?: number;
  /** One capture per fingerprint per this many ms. Default 60 000. */
  readonly minIntervalMs?: number;
  /**
   * Use EXPLAIN ANALYZE for provably read-only statements (classifier and catalog agree), run
   * inside BEGIN READ ONLY ... ROLLBACK. Writes always get a plain EXPLAIN. Default false.
   */
  readonly analyze?: boolean;
  /** statement_timeout for each EXPLAIN, set transaction-locally. Default 5000. */
  readonly statementTimeoutMs?: number;
  /** Latest plans kept, one per fingerprint. Default 100. */
  readonly maxResults?: number;
  /**
   * Bytes of statement text (2 a character) the queue may hold; a job that does not fit is
   * dropped and counted. Default: no bound beyond `queueSize`.
   */
  readonly maxQueuedBytes?: number;
  /** Bytes the kept plans may hold (their JSON, 2 a character); oldest go first. Default: none. */
  readonly maxPlanBytes?: number;
  /** Mask literals in stored and delivered plans. Default true; false only with captureParams. */
  readonly redact?: boolean;
  readonly classifier?: Classifier;
  readonly analyzer?: Omit<PlanAnalyzerOptions, 'relationRows'>;
  readonly onPlan?: (
    job: ExplainJobInfo<Context>,
    plan: CapturedPlan,
    findings: readonly PlanFinding[],
  ) => void | Promise<void>;
  readonly onError?: (job: ExplainJobInfo<Context>, error: ExplainError) => void;
  /** Fingerprints whose last capture time is remembered. Default 10 000. */
  readonly maxTrackedFingerprints?: number;
  readonly now?: () => number;
}
