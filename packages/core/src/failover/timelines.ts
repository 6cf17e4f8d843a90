import { formatLsn, type Lsn } from '../health/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { LostWindow } from './events.js';

/** The reachable writable nodes on the highest timeline among them (more than one: split brain). */
export function newestWritable(nodes: readonly ClusterNode[]): ClusterNode[] {
  let top = -1;
  let found: ClusterNode[] = [];
  for (const node of nodes) {
    const probe = node.health.lastProbe;
    if (!node.health.up || probe?.inRecovery !== false) continue;
    const timeline = probe.timeline ?? 0;
    if (timeline > top) {
      top = timeline;
      found = [node];
    } else if (timeline === top) {
      found.push(node);
    }
  }
  return found;
}

export function newer(candidate: ClusterNode, primary: ClusterNode | undefined): boolean {
  const mine = primary?.health.lastProbe?.timeline;
  const theirs = candidate.health.lastProbe?.timeline;
  return mine !== undefined && theirs !== undefined && theirs > mine;
}

/**
 * The WAL a promoted standby may lack: only a real window. A standby at or past the old
 * primary's last probed position (the probe was older than the crash) lost nothing that pgpulse
 * saw; `from` past `to` is no window. `oldPrimaryLsn` is undefined when there was no old primary.
 */
export function lostWindow(
  oldPrimaryLsn: Lsn | undefined,
  standbyPosition: Lsn | undefined,
): LostWindow | undefined {
  if (oldPrimaryLsn === undefined || standbyPosition === undefined) return undefined;
  if (!(oldPrimaryLsn > standbyPosition)) return undefined;
  return {
    from: formatLsn(standbyPosition),
    to: formatLsn(oldPrimaryLsn),
    bytes: Number(oldPrimaryLsn - standbyPosition),
  };
}

/**
 * A node that is not the elected primary and is writable gets nothing (split brain). A
 * fenced node that came back as a standby of the new primary may serve reads again.
 */
export function fenceOthers(nodes: readonly ClusterNode[], primary: ClusterNode | undefined): void {
  for (const node of nodes) {
    if (node === primary) continue;
    const probe = node.health.lastProbe;
    if (!node.health.up || !probe) continue;
    if (!probe.inRecovery) node.fenced = true;
    else if (
      node.fenced &&
      primary &&
      probe.timeline !== undefined &&
      probe.timeline === primary.health.lastProbe?.timeline
    ) {
      node.fenced = false;
    }
  }
}
