import type { Lsn } from '../health/index.js';
import type { ClusterNode } from '../topology/index.js';

/**
 * Who a server is, as the server itself says: the same for every app instance whatever the
 * configuration calls it, lists it in, or labels it. `systemId` is the cluster's system
 * identifier (pg_control_system(); equal on a primary and its streaming standbys), `address` the
 * server's own address and port (`inet_server_addr()`, the `port` setting).
 */
export interface NodeIdentity {
  readonly systemId: string;
  readonly address: string;
}

/** What the candidate rule looks at for one standby. */
export interface CandidateView {
  /** The highest WAL position the standby has: max(received, replayed). */
  readonly lsn: Lsn | undefined;
  /** The timeline it last reported; undefined when it never did. */
  readonly timeline: number | undefined;
  readonly identity: NodeIdentity;
}

/** `systemId/address`: the stable key the rule breaks ties with, and what a coordinator records. */
export function identityKey(identity: NodeIdentity): string {
  return `${identity.systemId}/${identity.address}`;
}

/**
 * Orders two standbys for promotion, best first: more WAL (it loses the least), then the newer
 * timeline, then the identity key in byte order. Every input is something each app instance
 * reads off the servers alike, never its own configuration order, so two instances that see the
 * same positions pick the same standby.
 */
export function compareCandidates(a: CandidateView, b: CandidateView): number {
  const la = a.lsn ?? -1n;
  const lb = b.lsn ?? -1n;
  if (la !== lb) return la > lb ? -1 : 1;
  const ta = a.timeline ?? 0;
  const tb = b.timeline ?? 0;
  if (ta !== tb) return tb - ta;
  const ka = identityKey(a.identity);
  const kb = identityKey(b.identity);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The standby every instance promotes, or undefined when there is none. */
export function pickCandidate<T extends CandidateView>(views: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const view of views) if (!best || compareCandidates(view, best) < 0) best = view;
  return best;
}

/**
 * The standby to promote by the rule every instance computes alike (most WAL, then newest
 * timeline, then server identity), among the reachable standbys not on an older timeline than
 * the primary's (`timelines`: the last timeline each node reported).
 */
export async function standbyCandidate(
  nodes: readonly ClusterNode[],
  primaryTimeline: number | undefined,
  timelines: ReadonlyMap<ClusterNode, number>,
  identityOf: (node: ClusterNode) => Promise<NodeIdentity>,
): Promise<ClusterNode | undefined> {
  const standbys = nodes.filter((node) => {
    const probe = node.health.lastProbe;
    if (!node.health.up || !probe?.inRecovery) return false;
    // A standby on an older timeline than the primary's is on a branch of its own.
    const timeline = probe.timeline ?? timelines.get(node);
    return primaryTimeline === undefined || timeline === undefined || timeline >= primaryTimeline;
  });
  const views = await Promise.all(
    standbys.map(async (node): Promise<CandidateView & { node: ClusterNode }> => {
      const probe = node.health.lastProbe;
      return {
        node,
        lsn: maxLsn(probe?.receiveLsn, probe?.replayLsn),
        timeline: probe?.timeline ?? timelines.get(node),
        identity: await identityOf(node),
      };
    }),
  );
  return pickCandidate(views)?.node;
}

/** The higher of two WAL positions (either may be unknown). */
export function maxLsn(a: Lsn | undefined, b: Lsn | undefined): Lsn | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}
