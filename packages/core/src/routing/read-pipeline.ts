/**
 * Which replicas may serve a read: one pipeline of independent steps, each owned by the
 * module that knows its subject (health: breaker, probes, standby, lag; failover: fencing;
 * consistency: read-your-writes). The router runs them in this order for every candidate
 * and reports the first that refuses; "why did this read go to the primary?" is answered here.
 */
import type { RouteScope } from '../context/index.js';
import { fenced } from '../failover/index.js';
import {
  breakerOpen,
  failedProbes,
  lagging,
  notStandby,
  overScopeLagBudget,
  unprobed,
} from '../health/index.js';
import type { ClusterNode } from '../topology/index.js';

/**
 * Says why a node may not serve a read for this scope right now, or undefined when it may.
 */
export type ReadEligibility = (
  node: ClusterNode,
  scope: RouteScope | undefined,
) => string | undefined;

/**
 * `lag` checks are soft: the `least-lagged` policy may still pick a replica that fails them.
 * `unprobed` is hard, and when it keeps a replica out the read goes to the primary whatever
 * the lag policy says (a cold start that has not probed the replicas yet, not a replica fault).
 * `consistency` checks protect read-your-writes: when they are what keeps every replica out, the
 * read goes to the primary whatever the lag policy says (it is not a replica health problem).
 */
export type ReadCheckKind = 'hard' | 'unprobed' | 'lag' | 'consistency';

export interface ReadCheck {
  readonly check: ReadEligibility;
  readonly kind: ReadCheckKind;
}

/**
 * The pipeline, given the consistency guard's step (it needs the cluster's sessions) and the
 * timeline of the primary as last probed (a standby promoted past it may serve reads).
 */
export function readPipeline(
  consistency: ReadEligibility,
  primaryTimeline: () => number | undefined = () => undefined,
): readonly ReadCheck[] {
  return [
    { kind: 'hard', check: breakerOpen },
    { kind: 'hard', check: failedProbes },
    { kind: 'unprobed', check: unprobed },
    { kind: 'hard', check: fenced },
    { kind: 'hard', check: (node) => notStandby(node, primaryTimeline) },
    { kind: 'consistency', check: consistency },
    { kind: 'lag', check: lagging },
    { kind: 'lag', check: overScopeLagBudget },
  ];
}
