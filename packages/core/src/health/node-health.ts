import type { NodeRole } from '../errors/index.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import type { ProbeResult } from './probe.js';

/** What the health monitor knows about one node; lives on the node as `node.health`. */
export interface NodeHealth {
  /** False once `maxConsecutiveFailures` probes in a row failed; true again on the next success. */
  up: boolean;
  consecutiveFailures: number;
  lastProbe: ProbeResult | undefined;
  lastError: string | undefined;
  /** Replica only: how far behind the primary, when it can be told. */
  lagBytes: number | undefined;
  lagMs: number | undefined;
  /** Over the lag limit; cleared only below the limit minus the hysteresis band. */
  lagging: boolean;
  /**
   * A completed health round has judged this node (probe and lag): false at a lazy cold
   * start until the first full round ends, and no read goes to a replica meanwhile.
   */
  judged: boolean;
}

/** A node's health before its first probe: up until proven down, not judged yet. */
export function initialHealth(): NodeHealth {
  return {
    up: true,
    consecutiveFailures: 0,
    lastProbe: undefined,
    lastError: undefined,
    lagBytes: undefined,
    lagMs: undefined,
    lagging: false,
    judged: false,
  };
}

/**
 * What the monitor needs of a node. topology's `ClusterNode` is one; the monitor names only
 * this much so that health/ does not import topology/ (which holds a node's health).
 */
export interface MonitoredNode {
  readonly name: string;
  readonly role: NodeRole;
  readonly health: NodeHealth;
  readonly breaker: Pick<CircuitBreaker, 'nodeAnswered'>;
  readonly pool: { drain(): void };
  recordLatency(ms: number): void;
  /** Cuts the one-off reads in flight on a node that stopped answering; returns how many. */
  abortOneOffReads(): number;
}

/** What the monitor reports, as one listener object given to its constructor. */
export interface MonitorEvents<N extends MonitoredNode = MonitoredNode> {
  nodeDown(node: N, error: string): void;
  nodeUp(node: N): void;
  lag(node: N, over: boolean): void;
  /** After every round, for failover detection. */
  round(): void;
}
