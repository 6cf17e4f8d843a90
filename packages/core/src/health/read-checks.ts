/**
 * health/'s steps of the read pipeline (routing/read-pipeline.ts puts them in order): each
 * says why a node may not serve a read right now, or undefined when it may. They name only
 * the part of a node they look at.
 */
import type { NodeHealth } from './node-health.js';

interface WithHealth {
  readonly health: NodeHealth;
}

/** The breaker is open: the node failed too often lately; a probe half-opens it. */
export function breakerOpen(node: {
  readonly breaker: { canRequest(): boolean };
}): string | undefined {
  return node.breaker.canRequest() ? undefined : 'circuit breaker open';
}

/** The last probes failed: the node is down or unreachable. */
export function failedProbes(node: WithHealth): string | undefined {
  return node.health.up ? undefined : 'failed its health probes';
}

/**
 * Not probed yet: a lazy cold start (#22) probes only the primary before the first read, so
 * a replica is unknown (it may be down, lagging or writable) until a completed round has
 * judged it (its probe answered and its lag was computed). The router sends such reads to
 * the primary whatever the lag policy says.
 */
export function unprobed(node: WithHealth): string | undefined {
  return node.health.lastProbe === undefined || !node.health.judged ? 'not probed yet' : undefined;
}

/**
 * The node answers as a primary (out of recovery): a replica must be a standby. Except a standby
 * that an HA system has just promoted: writable on a timeline newer than the primary's
 * (`primaryTimeline`, from the primary's last probe). The failover manager elects the newest
 * timeline when the health round ends, which a node that does not answer can hold up for a
 * probe timeout; until then it may serve reads, since it holds everything it replayed as a
 * standby (its replay position, which stays put after promotion, is what the consistency step
 * checks). A former primary, on the same or an older timeline, stays out.
 */
export function notStandby(
  node: WithHealth,
  primaryTimeline: () => number | undefined = () => undefined,
): string | undefined {
  const probe = node.health.lastProbe;
  if (probe?.inRecovery !== false) return undefined;
  // Asked only for a writable node: the usual standby costs the read nothing more.
  const known = primaryTimeline();
  const promoted = known !== undefined && probe.timeline !== undefined && probe.timeline > known;
  return promoted ? undefined : 'writable: not a standby';
}

/** Over the cluster's lag limits (`replicaLag`). A soft step: `least-lagged` may overrule it. */
export function lagging(node: WithHealth): string | undefined {
  return node.health.lagging ? `lagging (${node.health.lagMs ?? '?'} ms)` : undefined;
}

/** Over the lag budget of this scope (`cluster.withMaxLag`); unknown lag is over any budget. */
export function overScopeLagBudget(
  node: WithHealth,
  scope: { readonly maxLagMs?: number } | undefined,
): string | undefined {
  const budget = scope?.maxLagMs;
  if (budget === undefined) return undefined;
  const lag = node.health.lagMs;
  return lag !== undefined && lag <= budget
    ? undefined
    : `lag ${lag ?? 'unknown'} ms over this scope's ${budget} ms`;
}
