import type { SplitBrainError } from '../errors/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { NodeIdentity } from './candidate.js';
import type { FailoverCoordinator } from './coordinator/types.js';

/**
 * The WAL the old primary had written that the new one may not have received (asynchronous
 * replication).
 */
export interface LostWindow {
  /** The new primary's position when it was promoted (always before `to`). */
  readonly from: string;
  /** The last position the old primary was seen at. */
  readonly to: string;
  /** WAL written on the old primary that the new one may not have (asynchronous replication). */
  readonly bytes: number;
}

/** The 'failover-started' event: the primary was lost, why, and its last known position. */
export interface FailoverStarted {
  readonly primary: string;
  readonly reason: string;
  readonly lastKnownLsn: string | undefined;
}

/**
 * The 'failover-completed' event: the old and new primary, who promoted it, how long it took and
 * the WAL that may be lost.
 */
export interface FailoverCompleted {
  readonly from: string | undefined;
  readonly to: string;
  readonly timeline: number | undefined;
  readonly promotedBy: 'external' | 'pgpulse';
  readonly lostWindow: LostWindow | undefined;
  /** From detection of the old primary's failure to election of the new one, when detected. */
  readonly durationMs: number | undefined;
}

/**
 * The 'failover-candidate' event of semi-automatic promotion: the standby the rule chose and
 * approve() to promote it.
 */
export interface FailoverCandidate {
  readonly candidate: string;
  readonly receiveLsn: string | undefined;
  /** Promote the candidate now (semi-automatic mode). */
  approve(): Promise<void>;
}

/** Several nodes accept writes on the newest timeline; no write goes to any of them. */
export interface SplitBrainEvent {
  readonly nodes: readonly string[];
  readonly timeline: number | undefined;
  readonly error: SplitBrainError;
}

/** `automatic` promotion without a coordinator, while other pgpulse instances probe the primary. */
export interface SeveralInstancesEvent {
  /** pgpulse health connections with this cluster's application name on the primary, ours included. */
  readonly instances: number;
  readonly applicationName: string;
  readonly advice: string;
}

export interface FailoverEvents {
  started(event: FailoverStarted): void;
  candidate(event: FailoverCandidate): void;
  completed(event: FailoverCompleted): void;
  failed(error: Error): void;
  splitBrain(event: SplitBrainEvent): void;
  severalInstances(event: SeveralInstancesEvent): void;
}

/** Runs `SELECT pg_promote()` on a node; supplied by the cluster (it owns connections). */
export type Promote = (node: ClusterNode) => Promise<void>;

/** What the manager asks of the cluster, which owns the connections. */
export interface FailoverDeps {
  readonly promote: Promote;
  /** The node's identity as the server reports it (system identifier, own address and port). */
  readonly identify: (node: ClusterNode) => Promise<NodeIdentity>;
  /** pgpulse health connections with our application name on the primary (instances of this app). */
  readonly countInstances: () => Promise<number>;
  readonly applicationName: string;
  /** failover.coordinator: only the holder of its lease promotes. */
  readonly coordinator: FailoverCoordinator | undefined;
}
