import type { CacheStats } from '../cache/index.js';
import type {
  FailoverCandidate,
  FailoverCompleted,
  FailoverStarted,
  SeveralInstancesEvent,
  SplitBrainEvent,
} from '../failover/index.js';
import type { BreakerState } from '../health/index.js';
import type { Alert } from '../monitoring/index.js';
import type { PreparedStats } from '../prepared/index.js';
import type { Classification, RoutingReason } from '../routing/index.js';
import type { NodeStats } from '../topology/index.js';

/**
 * What `cluster.stats()` returns: per-node figures, routing decisions by reason, probe and alert
 * rounds, prepared statements.
 */
export interface ClusterStats {
  readonly nodes: readonly NodeStats[];
  /** How many statements were routed for each reason since start. */
  readonly routing: Readonly<Record<string, number>>;
  readonly classifierCacheSize: number;
  /** Health rounds completed. */
  readonly probeRounds: number;
  /** On-demand replay-position checks completed (see `health.positionCheckMs`). */
  readonly positionChecks: number;
  /** Monitoring (alert) rounds completed; 0 without `monitoring`. */
  readonly alertRounds: number;
  /** Automatic prepared statements: prepared, executed by name, re-prepared, deallocated. */
  readonly preparedStatements: PreparedStats;
}

/** What `cluster.middleware()` returns: the (req, res, next) shape Express, Connect and others use. */
export type ContextMiddleware = (
  req: { readonly headers: Readonly<Record<string, string | string[] | undefined>> },
  res: unknown,
  next: (err?: unknown) => void,
) => void;

/**
 * What `cluster.explainRoute(sql)` returns: how the statement was classified, where it would go and
 * why.
 */
export interface RouteExplanation {
  readonly classification: Classification;
  readonly target: 'primary' | 'replica';
  readonly reason: RoutingReason;
}

/**
 * The events a cluster emits, each with its payload: node and breaker changes, lag, failover, split
 * brain, alerts and errors.
 */
export interface ClusterEvents {
  breaker: [{ node: string; from: BreakerState; to: BreakerState }];
  'node-down': [{ node: string; role: string; error: string }];
  'node-up': [{ node: string; role: string }];
  lag: [{ node: string; over: boolean; lagMs: number | undefined; lagBytes: number | undefined }];
  'failover-started': [FailoverStarted];
  'failover-candidate': [FailoverCandidate];
  'failover-completed': [FailoverCompleted];
  'failover-failed': [{ error: Error }];
  /** Several nodes accept writes on the newest timeline: no write goes to any until one is left. */
  'split-brain': [SplitBrainEvent];
  /**
   * `promotion: 'automatic'` without `failover.coordinator` while other instances of this app
   * probe the same primary (without a listener, a process warning says so once).
   */
  'several-instances': [SeveralInstancesEvent];
  /** A connection-level error on an idle pooled connection (already handled; for logging). */
  'connection-error': [{ node: string; error: Error }];
  /** A replica refused a read as a write; it ran on the primary and is sent there from now on. */
  'replica-refused': [{ node: string; query: string; fingerprint: string }];
  /** `middleware()` got a malformed token header and treated it as absent (the value is not repeated). */
  'bad-token': [{ header: string; reason: string }];
  /** An alert fired or resolved (with `monitoring` configured); once per transition. */
  alert: [Alert];
}

/** `cluster.cache`: the query result cache's controls (inert when `cache` is not configured). */
export interface ClusterCache {
  /** True when the `cache` section is configured and enabled. */
  readonly enabled: boolean;
  /** Drops the entries that read any of `tables` (bare or schema-qualified names) or carry any of `tags`. */
  invalidate(what: {
    readonly tables?: readonly string[];
    readonly tags?: readonly string[];
  }): void;
  /** Drops every entry (on this instance only). */
  clear(): void;
  stats(): CacheStats;
  /**
   * True while this instance hears the other instances' writes (`cache.channel` LISTENed on
   * the current primary, heartbeat answered within `cache.unsubscribedMaxAgeMs`).
   */
  subscribed(): boolean;
  /** The channel's counts: subscriptions made, messages sent, messages heard from other instances. */
  channelStats(): { readonly subscriptions: number; readonly sent: number; readonly heard: number };
}

/** What `close()` waits for when not told: long enough for a request to finish, short of a pod's SIGKILL. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/** How `cluster.close()` ends the statements and clients still in use. */
export interface CloseOptions {
  /**
   * How long statements already issued and checked-out clients may go on before their
   * connections are cut; default {@link DEFAULT_CLOSE_TIMEOUT_MS}. 0 cuts them at once.
   */
  readonly timeoutMs?: number;
}
