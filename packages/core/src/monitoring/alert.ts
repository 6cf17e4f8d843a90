/** What an alert is about. Each kind has one threshold in `monitoring.thresholds`. */
export type AlertKind =
  | 'replication-lag'
  | 'connection-usage'
  | 'slow-query'
  | 'node-down'
  | 'breaker-open'
  | 'failover'
  | 'long-transaction'
  | 'idle-in-transaction'
  | 'lock-wait'
  | 'xid-age'
  | 'cache-hit-ratio';

/** Whether an alert is 'firing' now or has 'resolved'. */
export type AlertState = 'firing' | 'resolved';

/**
 * One alert, as `cluster.on('alert')`, `cluster.alerts()` and the webhook see it. It carries
 * node names and figures only: never a URL, a password, a parameter value or a statement's text.
 */
export interface Alert {
  /** `kind` or `kind:node`; one lifecycle (firing, then resolved) per id at a time. */
  readonly id: string;
  readonly kind: AlertKind;
  readonly state: AlertState;
  /** The node it is about; absent for cluster-wide alerts (failover). */
  readonly node?: string;
  /** The latest observed value (ms, a fraction, a count or an age, by kind). */
  readonly value: number;
  /** The threshold it crossed; for `cache-hit-ratio` a floor, for the others a ceiling. */
  readonly threshold: number;
  /** When it started firing (ISO 8601). */
  readonly since: string;
  /** When it resolved (ISO 8601), on a resolved alert. */
  readonly resolvedAt?: string;
  /** One human sentence, e.g. "replica-1 is 12 400 ms behind the primary (threshold 10 000 ms)". */
  readonly message: string;
}

/** One condition measured in a round: over its threshold (`breached`) or not. */
export interface Observation {
  readonly kind: AlertKind;
  readonly node?: string;
  readonly value: number;
  readonly threshold: number;
  readonly breached: boolean;
  readonly message: string;
}

export function alertId(kind: AlertKind, node: string | undefined): string {
  return node === undefined ? kind : `${kind}:${node}`;
}
