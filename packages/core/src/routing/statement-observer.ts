import type { SpanContext } from '@opentelemetry/api';
import type { RouteScope } from '../context/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { Classification } from './classification.js';
import type { PreparedUse } from './executor-hooks.js';
import type { QueryRequest } from './query-args.js';
import type { RoutingReason } from './router.js';

/** One statement on its way to a node, as observers see it. */
export interface StatementEvent {
  readonly node: ClusterNode;
  readonly reason: RoutingReason;
  readonly cls: Classification;
  readonly request: QueryRequest;
  readonly scope: RouteScope | undefined;
  /** Set while it runs when it was sent as an automatic prepared statement (telemetry). */
  prepared?: PreparedUse;
  /** Set when it finished over the slow-query threshold, for the listeners after that log's. */
  slow?: SlowMark;
}

/**
 * What the slow-query log (analysis/) notes on a statement over the threshold, for the
 * listeners after it in the chain: telemetry records the span with it (a `pgpulse.slow_query`
 * event) and leaves the span's context here, so that the plan, captured later off the query
 * path, is recorded linked to that span.
 */
export interface SlowMark {
  readonly fingerprint: string;
  /** Normalized text (literals as $n). */
  readonly query: string;
  readonly thresholdMs: number;
  /** The plan already captured for this fingerprint, if any. */
  readonly plan: SlowMarkPlan | undefined;
  /** The statement's span, once recorded (telemetry). */
  spanContext: SpanContext | undefined;
}

/** What a span reads of a captured plan (analysis/'s CapturedPlan has this shape and more). */
export interface SlowMarkPlan {
  readonly node: string;
  readonly mode: string;
  /** Redacted (literals masked) by the capture. */
  readonly plan: unknown;
  readonly findings: readonly {
    readonly severity: string;
    readonly kind: string;
    readonly message: string;
  }[];
}

export interface StatementOutcome {
  readonly durationMs: number;
  readonly error: unknown;
  readonly rowCount: number | null | undefined;
}

/** Hooks the cluster attaches to every statement (counting, telemetry, read-your-writes). */
export interface StatementObserver {
  routed(reason: RoutingReason, node: ClusterNode): void;
  /** False when around() only calls `run`: the executor then sends without it. */
  readonly wraps: boolean;
  /** Wraps the round trip (telemetry makes its span current here). */
  around<T>(event: StatementEvent, run: () => Promise<T>): Promise<T>;
  /** A statement finished on a node, successfully or not. */
  finished(event: StatementEvent, outcome: StatementOutcome): void;
  /** A replica refused a read as a write; it is retried on the primary next. */
  refused?(node: ClusterNode, request: QueryRequest, error: unknown): void;
}

/**
 * One module's part in what every statement reports: where it was placed, how it finished,
 * whether a replica refused it. Each module that keeps state from statements implements the
 * methods it needs (consistency records write and read positions, the function catalog reloads
 * after DDL or a refusal, the slow-query log times it, monitoring keeps the slowest); the
 * cluster composes them once into a {@link StatementObservers} chain.
 */
export interface StatementListener {
  /** The statement was placed on `node` for `reason`. */
  routed?(reason: RoutingReason, node: ClusterNode): void;
  /** The statement finished on its node, successfully or not (`outcome.error`). */
  finished?(event: StatementEvent, outcome: StatementOutcome): void;
  /** A replica refused a read as a write; it is retried on the primary next. */
  refused?(node: ClusterNode, request: QueryRequest, error: unknown): void;
}

/** What wraps each statement's round trip (telemetry makes its span current there). */
export interface StatementWrapper {
  around<T>(event: StatementEvent, run: () => Promise<T>): Promise<T>;
}

type Routed = (reason: RoutingReason, node: ClusterNode) => void;
type Finished = (event: StatementEvent, outcome: StatementOutcome) => void;
type Refused = (node: ClusterNode, request: QueryRequest, error: unknown) => void;

/**
 * The executor's one observer: the listeners in the order given, each method called in turn.
 * The lists are fixed at construction, so a statement costs a loop over bound functions and no
 * allocation.
 */
export class StatementObservers implements StatementObserver {
  readonly #routed: readonly Routed[];
  readonly #finished: readonly Finished[];
  readonly #refused: readonly Refused[];
  readonly #wrapper: StatementWrapper | undefined;
  readonly wraps: boolean;

  constructor(
    listeners: readonly (StatementListener | undefined)[],
    wrapper: StatementWrapper | undefined,
  ) {
    const routed: Routed[] = [];
    const finished: Finished[] = [];
    const refused: Refused[] = [];
    for (const listener of listeners) {
      if (listener?.routed) routed.push(listener.routed.bind(listener));
      if (listener?.finished) finished.push(listener.finished.bind(listener));
      if (listener?.refused) refused.push(listener.refused.bind(listener));
    }
    this.#routed = routed;
    this.#finished = finished;
    this.#refused = refused;
    this.#wrapper = wrapper;
    this.wraps = wrapper !== undefined;
  }

  routed(reason: RoutingReason, node: ClusterNode): void {
    const list = this.#routed;
    for (let i = 0; i < list.length; i++) list[i]?.(reason, node);
  }

  around<T>(event: StatementEvent, run: () => Promise<T>): Promise<T> {
    return this.#wrapper === undefined ? run() : this.#wrapper.around(event, run);
  }

  finished(event: StatementEvent, outcome: StatementOutcome): void {
    const list = this.#finished;
    for (let i = 0; i < list.length; i++) list[i]?.(event, outcome);
  }

  refused(node: ClusterNode, request: QueryRequest, error: unknown): void {
    const list = this.#refused;
    for (let i = 0; i < list.length; i++) list[i]?.(node, request, error);
  }
}

/** Statements routed for each reason since start (`cluster.stats().routing`, telemetry). */
export class RoutingCounts implements StatementListener {
  /** The count per reason; read, never written, outside this class. */
  readonly byReason = new Map<RoutingReason, number>();

  routed(reason: RoutingReason): void {
    this.byReason.set(reason, (this.byReason.get(reason) ?? 0) + 1);
  }
}
