import type { ResolvedFailoverConfig } from '../config/index.js';
import { PgPulseError } from '../errors/index.js';
import { formatLsn, type HealthMonitor, type Lsn } from '../health/index.js';
import type { ClusterNode } from '../topology/index.js';

export interface LostWindow {
  /** The new primary's position when it was promoted. */
  readonly from: string;
  /** The last position the old primary was seen at. */
  readonly to: string;
  /** WAL written on the old primary that the new one may not have (asynchronous replication). */
  readonly bytes: number;
}

export interface FailoverStarted {
  readonly primary: string;
  readonly reason: string;
  readonly lastKnownLsn: string | undefined;
}

export interface FailoverCompleted {
  readonly from: string | undefined;
  readonly to: string;
  readonly timeline: number | undefined;
  readonly promotedBy: 'external' | 'pgpulse';
  readonly lostWindow: LostWindow | undefined;
  /** From detection of the old primary's failure to election of the new one, when detected. */
  readonly durationMs: number | undefined;
}

export interface FailoverCandidate {
  readonly candidate: string;
  readonly receiveLsn: string | undefined;
  /** Promote the candidate now (semi-automatic mode). */
  approve(): Promise<void>;
}

export interface FailoverEvents {
  started(event: FailoverStarted): void;
  candidate(event: FailoverCandidate): void;
  completed(event: FailoverCompleted): void;
  failed(error: Error): void;
}

/** Runs `SELECT pg_promote()` on a node; supplied by the cluster (it owns connections). */
export type Promote = (node: ClusterNode) => Promise<void>;

/**
 * Decides which node is the primary after every health round, by the `failover.promotion`
 * strategy. An application has no quorum, so by default it follows the promotion an HA system
 * made (`external`): the node that is out of recovery on the highest timeline. Any other node
 * that is writable is fenced: it gets no writes and no reads (split-brain guard, invariant 4).
 */
export class FailoverManager {
  private downSince: number | undefined;
  private lastPrimaryLsn: Lsn | undefined;
  private promoting: Promise<void> | undefined;
  private offered: string | undefined;
  private readonly electionWaiters = new Set<() => void>();

  constructor(
    private readonly nodes: readonly ClusterNode[],
    private readonly config: ResolvedFailoverConfig,
    private readonly monitor: HealthMonitor,
    private readonly promote: Promote,
    private readonly events: FailoverEvents,
  ) {}

  get primary(): ClusterNode | undefined {
    return this.nodes.find((n) => n.role === 'primary');
  }

  /** Is a failover under way (the elected primary is down or no longer writable)? */
  get inProgress(): boolean {
    return this.downSince !== undefined;
  }

  /** Resolves when a primary is elected, or after `timeoutMs`. */
  waitForPrimary(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.electionWaiters;
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  /** Called after every health round. */
  onRound(): void {
    // A promotion pgpulse started elects its node itself (and says so); do not race it.
    if (this.promoting) return;
    const primary = this.primary;
    const probe = primary?.health.lastProbe;
    if (primary?.health.up && probe && !probe.inRecovery && probe.currentLsn !== undefined) {
      this.lastPrimaryLsn = probe.currentLsn;
    }
    const writable = this.nodes.filter(
      (n) => n.health.up && n.health.lastProbe?.inRecovery === false,
    );
    const best = highestTimeline(writable);
    const primaryLost = !primary?.health.up || probe?.inRecovery === true;

    // A writable node on a newer timeline than the primary we know means someone promoted it.
    if (best && best !== primary && (primaryLost || newer(best, primary))) {
      this.elect(best, 'external');
    } else if (primaryLost) {
      this.onPrimaryLost(primary);
    }
    this.fenceOthers();
  }

  /** `failover.promotion: 'manual'` (or any mode): promote this standby and route writes to it. */
  async manual(target: { host: string; port: number } | { name: string }): Promise<void> {
    const node = this.nodes.find((n) =>
      'name' in target ? n.name === target.name : n.host === target.host && n.port === target.port,
    );
    if (!node) {
      throw new PgPulseError(
        'PGPULSE_FAILOVER',
        `No configured node matches ${JSON.stringify(target)}; failover needs one of this cluster's replicas.`,
      );
    }
    await this.monitor.probeAll();
    if (!node.health.up)
      throw new PgPulseError(
        'PGPULSE_FAILOVER',
        `Cannot promote "${node.name}": it is not reachable.`,
      );
    if (node.health.lastProbe?.inRecovery === false) {
      this.elect(node, 'external');
      return;
    }
    await this.promoteAndElect(node);
  }

  private onPrimaryLost(primary: ClusterNode | undefined): void {
    if (this.downSince === undefined) {
      this.downSince = performance.now();
      this.events.started({
        primary: primary?.name ?? '(none)',
        reason: !primary
          ? 'no primary'
          : primary.health.up
            ? 'the primary is in recovery'
            : (primary.health.lastError ?? 'unreachable'),
        lastKnownLsn:
          this.lastPrimaryLsn === undefined ? undefined : formatLsn(this.lastPrimaryLsn),
      });
    }
    const mode = this.config.promotion;
    if (mode === 'external' || mode === 'manual' || this.promoting) return;
    const candidate = this.bestStandby();
    if (!candidate) return;
    if (mode === 'automatic') {
      void this.promoteAndElect(candidate).catch(() => {});
    } else if (this.offered !== candidate.name) {
      this.offered = candidate.name;
      const receive = candidate.health.lastProbe?.receiveLsn;
      this.events.candidate({
        candidate: candidate.name,
        receiveLsn: receive === undefined ? undefined : formatLsn(receive),
        approve: () => this.promoteAndElect(candidate),
      });
    }
  }

  /** The reachable standby that received the most WAL: it loses the least on promotion. */
  private bestStandby(): ClusterNode | undefined {
    let best: ClusterNode | undefined;
    let bestLsn: Lsn = -1n;
    for (const node of this.nodes) {
      const probe = node.health.lastProbe;
      if (node.role !== 'replica' || node.fenced || !node.health.up || !probe?.inRecovery) continue;
      const lsn = maxLsn(probe.receiveLsn, probe.replayLsn);
      if (lsn !== undefined && lsn > bestLsn) {
        best = node;
        bestLsn = lsn;
      }
    }
    return best;
  }

  private promoteAndElect(node: ClusterNode): Promise<void> {
    this.promoting ??= (async () => {
      try {
        // Probe once more: the standbys' received positions are final only now.
        await this.monitor.probeAll();
        const chosen = this.config.promotion === 'automatic' ? (this.bestStandby() ?? node) : node;
        await this.promote(chosen);
        await this.monitor.probeAll();
        if (chosen.health.lastProbe?.inRecovery !== false) {
          throw new PgPulseError(
            'PGPULSE_FAILOVER',
            `"${chosen.name}" is still in recovery after pg_promote()`,
          );
        }
        this.elect(chosen, 'pgpulse');
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        this.events.failed(error);
        throw error;
      } finally {
        this.promoting = undefined;
        this.offered = undefined;
      }
    })();
    return this.promoting;
  }

  private elect(node: ClusterNode, promotedBy: 'external' | 'pgpulse'): void {
    const old = this.primary;
    if (old === node) return;
    const standbyPosition = maxLsn(
      node.health.lastProbe?.receiveLsn,
      node.health.lastProbe?.replayLsn,
    );
    for (const other of this.nodes) {
      if (other.role === 'primary') {
        other.role = 'replica';
        other.fenced = true;
        other.pool.drain();
      }
    }
    node.role = 'primary';
    node.fenced = false;
    this.monitor.resetHistory();
    const lost =
      this.lastPrimaryLsn !== undefined && standbyPosition !== undefined && old !== undefined
        ? {
            from: formatLsn(standbyPosition),
            to: formatLsn(this.lastPrimaryLsn),
            bytes:
              this.lastPrimaryLsn > standbyPosition
                ? Number(this.lastPrimaryLsn - standbyPosition)
                : 0,
          }
        : undefined;
    const durationMs =
      this.downSince === undefined ? undefined : performance.now() - this.downSince;
    this.downSince = undefined;
    this.lastPrimaryLsn = node.health.lastProbe?.currentLsn;
    this.events.completed({
      from: old?.name,
      to: node.name,
      timeline: node.health.lastProbe?.timeline,
      promotedBy,
      lostWindow: lost,
      durationMs,
    });
    for (const wake of [...this.electionWaiters]) wake();
  }

  /**
   * A node that is not the elected primary and is writable gets nothing (split brain). A
   * fenced node that came back as a standby of the new primary may serve reads again.
   */
  private fenceOthers(): void {
    const primary = this.primary;
    for (const node of this.nodes) {
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
}

function highestTimeline(nodes: readonly ClusterNode[]): ClusterNode | undefined {
  let best: ClusterNode | undefined;
  for (const node of nodes) {
    if (!best || (node.health.lastProbe?.timeline ?? 0) > (best.health.lastProbe?.timeline ?? 0))
      best = node;
  }
  return best;
}

function newer(candidate: ClusterNode, primary: ClusterNode | undefined): boolean {
  const mine = primary?.health.lastProbe?.timeline;
  const theirs = candidate.health.lastProbe?.timeline;
  return mine !== undefined && theirs !== undefined && theirs > mine;
}

function maxLsn(a: Lsn | undefined, b: Lsn | undefined): Lsn | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}
