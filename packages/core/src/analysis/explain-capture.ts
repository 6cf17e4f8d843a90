import { ConfigError } from '../errors/index.js';
import { type ConnectionLease, qualified } from '../sql/index.js';
import { fetchRelations, serverVersion } from './catalog.js';
import type {
  CapturedPlan,
  EnqueueOutcome,
  ExplainCaptureOptions,
  ExplainCaptureStats,
  ExplainJob,
  ExplainJobInfo,
} from './explain-capture-types.js';
import {
  explainFailure,
  explainStatement,
  inReadOnlyTransaction,
  underSavepoint,
} from './explain-runner.js';
import { numberOption } from './options.js';
import { planRelations } from './plan.js';
import { analyzePlan } from './plan-analyzer.js';
import { redactPlan } from './redact-plan.js';
import { inspectStatement } from './statement.js';

/**
 * Captures EXPLAIN (FORMAT JSON) plans of slow statements off the query path (invariant 8):
 * `enqueue` is synchronous and O(1), the queue is bounded and counts what it drops, each
 * fingerprint is captured at most once per `minIntervalMs`, and jobs run one at a time on a
 * connection from `connect(node)`. Every EXPLAIN runs inside BEGIN READ ONLY ... ROLLBACK with
 * a transaction-local statement_timeout; ANALYZE only as invariant 5 allows. Nothing it does
 * throws into the caller: failures are counted and reported to `onError`.
 */
export class ExplainCapture<Context = unknown> {
  readonly #options: ExplainCaptureOptions<Context>;
  readonly #queueSize: number;
  readonly #minIntervalMs: number;
  readonly #statementTimeoutMs: number;
  readonly #maxResults: number;
  readonly #maxTracked: number;
  readonly #now: () => number;
  readonly #queue: ExplainJob<Context>[] = [];
  readonly #lastAccepted = new Map<string, number>();
  readonly #results = new Map<string, CapturedPlan>();
  /** Each kept plan's size, counted once when stored. */
  readonly #resultBytes = new Map<string, number>();
  readonly #maxQueuedBytes: number;
  readonly #maxPlanBytes: number;
  #queuedBytes = 0;
  #planBytes = 0;
  readonly #versions = new Map<string, number>();
  #running: Promise<void> | undefined;
  #closed = false;
  #stats = {
    accepted: 0,
    dropped: 0,
    rateLimited: 0,
    completed: 0,
    failed: 0,
    analyzed: 0,
    skipped: 0,
    cancelled: 0,
  };

  constructor(options: ExplainCaptureOptions<Context>) {
    if (typeof options?.connect !== 'function') {
      throw new ConfigError([
        {
          field: 'connect',
          message: 'must be a function (nodeName) => Promise<{ client, release }>',
        },
      ]);
    }
    this.#options = options;
    this.#queueSize = Math.floor(numberOption('queueSize', options.queueSize, 100, 1));
    this.#minIntervalMs = numberOption('minIntervalMs', options.minIntervalMs, 60_000, 0);
    this.#statementTimeoutMs = numberOption(
      'statementTimeoutMs',
      options.statementTimeoutMs,
      5000,
      1,
    );
    this.#maxResults = Math.floor(numberOption('maxResults', options.maxResults, 100, 1));
    this.#maxTracked = Math.floor(
      numberOption('maxTrackedFingerprints', options.maxTrackedFingerprints, 10_000, 1),
    );
    this.#now = options.now ?? Date.now;
    this.#maxQueuedBytes = numberOption(
      'maxQueuedBytes',
      options.maxQueuedBytes,
      Number.POSITIVE_INFINITY,
      1,
    );
    this.#maxPlanBytes = numberOption(
      'maxPlanBytes',
      options.maxPlanBytes,
      Number.POSITIVE_INFINITY,
      1,
    );
  }

  /** Bytes held: queued jobs' texts and parameters, kept plans (see the options). */
  bytes(): { readonly queued: number; readonly plans: number } {
    return { queued: this.#queuedBytes, plans: this.#planBytes };
  }

  stats(): ExplainCaptureStats {
    return { queued: this.#queue.length, ...this.#stats };
  }

  /** Latest plan per fingerprint, the most recent first. */
  results(): CapturedPlan[] {
    return [...this.#results.values()].reverse();
  }

  get(fingerprint: string): CapturedPlan | undefined {
    return this.#results.get(fingerprint);
  }

  /** Queues a capture; returns at once with what happened to the job. Never throws. */
  enqueue(job: ExplainJob<Context>): EnqueueOutcome {
    try {
      if (this.#closed) return 'closed';
      const now = this.#now();
      const last = this.#lastAccepted.get(job.fingerprint);
      if (last !== undefined && now - last < this.#minIntervalMs) {
        this.#stats.rateLimited++;
        return 'rate-limited';
      }
      const bytes = jobBytes(job);
      if (
        this.#queue.length >= this.#queueSize ||
        this.#queuedBytes + bytes > this.#maxQueuedBytes
      ) {
        this.#stats.dropped++;
        return 'dropped';
      }
      this.#queuedBytes += bytes;
      this.#lastAccepted.delete(job.fingerprint);
      this.#lastAccepted.set(job.fingerprint, now);
      if (this.#lastAccepted.size > this.#maxTracked) {
        const oldest = this.#lastAccepted.keys().next();
        if (oldest.done !== true) this.#lastAccepted.delete(oldest.value);
      }
      // A copy: the caller may reuse its params array once the query returned.
      this.#queue.push({
        ...job,
        ...(Array.isArray(job.params) ? { params: [...job.params] } : {}),
      });
      this.#stats.accepted++;
      this.#start();
      return 'queued';
    } catch {
      this.#stats.dropped++;
      return 'dropped';
    }
  }

  /** Resolves once the queue is empty and no job runs. */
  async drain(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** Stops accepting jobs, abandons queued ones (counted as cancelled), waits for the running one. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stats.cancelled += this.#queue.length;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    await this.drain();
  }

  #start(): void {
    if (this.#running !== undefined) return;
    // setImmediate: the first job starts after the caller's own continuation, not inside it.
    this.#running = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#loop())
      .finally(() => {
        this.#running = undefined;
      });
  }

  async #loop(): Promise<void> {
    for (let job = this.#queue.shift(); job !== undefined; job = this.#queue.shift()) {
      this.#queuedBytes = Math.max(0, this.#queuedBytes - jobBytes(job));
      try {
        await this.#process(job);
      } catch {
        // #process reports its own failures; this only guards the loop.
        this.#stats.failed++;
      }
    }
  }

  #info(job: ExplainJob<Context>): ExplainJobInfo<Context> {
    return {
      sql: job.sql,
      node: job.node,
      fingerprint: job.fingerprint,
      paramCount: job.params?.length ?? 0,
      ...(job.kind === undefined ? {} : { kind: job.kind }),
      ...(job.context === undefined ? {} : { context: job.context }),
    };
  }

  #fail(job: ExplainJob<Context>, error: unknown): void {
    this.#stats.failed++;
    const failure = explainFailure(error, (job.params?.length ?? 0) > 0);
    try {
      this.#options.onError?.(this.#info(job), failure);
    } catch {
      // A throwing callback must not stop the queue.
    }
  }

  async #process(job: ExplainJob<Context>): Promise<void> {
    const shape = inspectStatement(job.sql, this.#options.classifier);
    if (!shape.explainable) {
      this.#stats.skipped++;
      return;
    }
    let lease: ConnectionLease;
    try {
      lease = await this.#options.connect(job.node);
    } catch (error) {
      this.#fail(job, error);
      return;
    }
    const started = performance.now();
    let destroy = false;
    let captured: CapturedPlan;
    try {
      const client = lease.client;
      let version = this.#versions.get(job.node);
      if (version === undefined) {
        version = await serverVersion(client);
        this.#versions.set(job.node, version);
      }
      const serverVersionNum = version;
      const { outcome, relations } = await inReadOnlyTransaction(
        client,
        this.#statementTimeoutMs,
        async (cleanups) => {
          const outcome = await explainStatement(
            client,
            {
              sql: job.sql,
              params: job.params,
              shape,
              analyze: this.#options.analyze === true && job.kind !== 'write',
              serverVersion: serverVersionNum,
            },
            cleanups,
          );
          const relations = await underSavepoint(client, () =>
            fetchRelations(client, planRelations(outcome.result)),
          );
          return { outcome, relations };
        },
      );
      const findings = analyzePlan(outcome.result, {
        ...this.#options.analyzer,
        relationRows: (relation, schema) => relations?.get(qualified(schema, relation))?.rows,
      });
      captured = {
        fingerprint: job.fingerprint,
        node: job.node,
        mode: outcome.mode,
        capturedAt: this.#now(),
        durationMs: performance.now() - started,
        plan: this.#options.redact === false ? outcome.result : redactPlan(outcome.result),
        findings,
      };
    } catch (error) {
      destroy = true;
      this.#fail(job, error);
      return;
    } finally {
      lease.release(destroy);
    }
    this.#store(captured);
    this.#stats.completed++;
    if (captured.mode === 'analyze') this.#stats.analyzed++;
    try {
      // Not awaited: a slow or hanging callback must not hold up the queue.
      const delivered = this.#options.onPlan?.(this.#info(job), captured, captured.findings);
      if (delivered instanceof Promise) delivered.catch(() => {});
    } catch {
      // A throwing callback must not stop the queue.
    }
  }

  #store(captured: CapturedPlan): void {
    this.#forget(captured.fingerprint);
    const bytes = planBytes(captured);
    if (bytes > this.#maxPlanBytes) return; // alone over the bound: not kept (still delivered)
    this.#results.set(captured.fingerprint, captured);
    this.#resultBytes.set(captured.fingerprint, bytes);
    this.#planBytes += bytes;
    while (this.#results.size > this.#maxResults || this.#planBytes > this.#maxPlanBytes) {
      const oldest = this.#results.keys().next();
      if (oldest.done === true) break;
      this.#forget(oldest.value);
    }
  }

  #forget(fingerprint: string): void {
    this.#planBytes -= this.#resultBytes.get(fingerprint) ?? 0;
    this.#resultBytes.delete(fingerprint);
    this.#results.delete(fingerprint);
  }
}

/** A queued job's text and parameters, 2 bytes a character. */
function jobBytes(job: { readonly sql: string; readonly params?: readonly unknown[] }): number {
  let bytes = typeof job.sql === 'string' ? job.sql.length * 2 : 0;
  if (Array.isArray(job.params)) {
    for (const param of job.params) bytes += typeof param === 'string' ? param.length * 2 : 16;
  }
  return bytes;
}

/** A captured plan's size as its JSON, 2 bytes a character. */
function planBytes(captured: CapturedPlan): number {
  try {
    return (JSON.stringify(captured)?.length ?? 0) * 2;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
