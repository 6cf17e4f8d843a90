import type { ResolvedFailoverConfig } from '../config/index.js';
import { PgPulseError, SplitBrainError } from '../errors/index.js';
import { formatLsn, type HealthMonitor, type Lsn } from '../health/index.js';
import type { ClusterNode } from '../topology/index.js';
import { identityKey, maxLsn, type NodeIdentity, standbyCandidate } from './candidate.js';
import type { PromotionLease } from './coordinator/types.js';
import { ElectionWaiters } from './election-waiters.js';
import type { FailoverDeps, FailoverEvents } from './events.js';
import { NodeIdentities } from './identity.js';
import { InstanceWatch } from './several-instances.js';
import { fenceOthers, lostWindow, newer, newestWritable } from './timelines.js';

/**
 * Decides which node is the primary after every health round, by the `failover.promotion`
 * strategy. An application has no quorum, so by default it follows the promotion an HA system
 * made (`external`): the node that is out of recovery on the highest timeline. Any other node
 * that is writable is fenced: it gets no writes and no reads (split-brain guard, invariant 4).
 * Two writable nodes on that same highest timeline are a split brain: no node gets writes
 * until one of them is gone or back in recovery.
 */
export class FailoverManager {
  private downSince: number | undefined;
  private lastPrimaryLsn: Lsn | undefined;
  /** The timeline of the elected primary when it was last seen writable. */
  private primaryTimeline: number | undefined;
  private promoting: Promise<void> | undefined;
  private offered: string | undefined;
  private offering = false;
  private split: SplitBrainError | undefined;
  private readonly electionWaiters = new ElectionWaiters();
  private readonly identities: NodeIdentities;
  private readonly instances: InstanceWatch;
  private rounds = 0;
  /** The last timeline each node reported (a standby's WAL receiver row comes and goes). */
  private readonly timelines = new Map<ClusterNode, number>();

  constructor(
    private readonly nodes: readonly ClusterNode[],
    private readonly config: ResolvedFailoverConfig,
    private readonly monitor: HealthMonitor,
    private readonly deps: FailoverDeps,
    private readonly events: FailoverEvents,
  ) {
    this.identities = new NodeIdentities(deps.identify);
    this.instances = new InstanceWatch(
      config.promotion === 'automatic' && !deps.coordinator,
      deps,
      events,
    );
  }

  get primary(): ClusterNode | undefined {
    return this.nodes.find((n) => n.role === 'primary');
  }

  /** Is a failover under way (the elected primary is down or no longer writable)? */
  get inProgress(): boolean {
    return this.downSince !== undefined;
  }

  /** The split brain in force (no node gets writes), if any. */
  get splitBrain(): SplitBrainError | undefined {
    return this.split;
  }

  /** Resolves when a primary is elected, or after `timeoutMs`. */
  waitForPrimary(timeoutMs: number): Promise<void> {
    return this.electionWaiters.wait(timeoutMs);
  }

  /**
   * The standby this instance would promote now, by the rule every instance computes alike
   * (most WAL, then newest timeline, then server identity). Reads each standby's identity once.
   */
  candidate(): Promise<ClusterNode | undefined> {
    return standbyCandidate(this.nodes, this.primaryTimeline, this.timelines, (node) =>
      this.identityOf(node),
    );
  }

  /** Called after every health round. */
  onRound(): void {
    this.rounds++;
    // A promotion pgpulse started elects its node itself (and says so); do not race it.
    if (this.promoting) return;
    for (const node of this.nodes) {
      const timeline = node.health.lastProbe?.timeline;
      if (node.health.up && timeline !== undefined) this.timelines.set(node, timeline);
    }
    const primary = this.primary;
    const probe = primary?.health.lastProbe;
    if (primary?.health.up && probe && !probe.inRecovery && probe.currentLsn !== undefined) {
      this.lastPrimaryLsn = probe.currentLsn;
      if (probe.timeline !== undefined) this.primaryTimeline = probe.timeline;
    }
    const newest = newestWritable(this.nodes);
    if (newest.length > 1) {
      this.enterSplitBrain(newest);
      return;
    }
    this.split = undefined;
    const best = newest[0];
    const primaryLost = !primary?.health.up || probe?.inRecovery === true;

    // A writable node on a newer timeline than the primary we know means someone promoted it.
    if (best && best !== primary && (primaryLost || newer(best, primary))) {
      this.elect(best, 'external');
    } else if (primaryLost) {
      this.onPrimaryLost(primary);
    } else if (this.downSince !== undefined) {
      // The primary answers again as a primary: it was a blip, not a failover.
      this.downSince = undefined;
      this.electionWaiters.wakeAll();
    }
    fenceOthers(this.nodes, this.primary);
    this.instances.afterRound(this.rounds);
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
    const primary = this.primary;
    if (primary !== node) {
      // promoteAndElect found the elected primary up and writable, and left it so: promoting
      // beside a live primary would split the writes between two servers.
      throw new PgPulseError(
        'PGPULSE_FAILOVER',
        `Did not promote "${node.name}": the primary "${primary?.name ?? '(none)'}" is up and ` +
          'writable. Stop or demote it first (pgpulse then promotes the standby you name), or ' +
          'switch over with your HA system: pgpulse follows the node on the newest timeline.',
      );
    }
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
    if (mode === 'automatic') {
      void this.promoteAndElect(undefined).catch(() => {});
      return;
    }
    void this.offer();
  }

  /** semi-automatic: offer the rule's candidate once (until it changes). */
  private async offer(): Promise<void> {
    if (this.offering) return;
    this.offering = true;
    let candidate: ClusterNode | undefined;
    try {
      // Positions read before the primary died may be stale: decide on a round sent after.
      await this.freshRound();
      candidate = await this.candidate();
    } catch {
      candidate = undefined;
    } finally {
      this.offering = false;
    }
    if (!candidate || this.offered === candidate.name || this.promoting) return;
    this.offered = candidate.name;
    const receive = candidate.health.lastProbe?.receiveLsn;
    this.events.candidate({
      candidate: candidate.name,
      receiveLsn: receive === undefined ? undefined : formatLsn(receive),
      approve: () => this.promoteAndElect(candidate),
    });
  }

  /**
   * Promotes `target` (manual, approve()) or the rule's candidate (automatic), after probing
   * every node afresh: a node another instance or an HA system already promoted is followed
   * instead. With a coordinator, the decision is taken under its lease only.
   */
  private promoteAndElect(target: ClusterNode | undefined): Promise<void> {
    this.promoting ??= (async () => {
      let lease: PromotionLease | undefined;
      try {
        const coordinator = target === undefined ? this.deps.coordinator : undefined;
        if (coordinator) {
          const scope = await this.clusterScope();
          lease = await coordinator.acquire(scope);
          // Another instance decides; the probes show what it promoted.
          if (!lease) return;
        }
        await this.freshRound();
        if (this.followPromoted()) return;
        if (lease && (await this.followRecorded(lease))) return;
        const chosen = target ?? (await this.candidate());
        if (!chosen) {
          throw new PgPulseError(
            'PGPULSE_FAILOVER',
            'no reachable standby on the current timeline to promote',
            { retriable: true },
          );
        }
        await this.promote(chosen);
        await this.freshRound();
        if (chosen.health.lastProbe?.inRecovery !== false) {
          throw new PgPulseError(
            'PGPULSE_FAILOVER',
            `"${chosen.name}" is still in recovery after pg_promote()`,
            { retriable: true },
          );
        }
        const newest = newestWritable(this.nodes);
        if (newest.length > 1 || (newest[0] && newest[0] !== chosen)) {
          const error = this.enterSplitBrain(
            newest.includes(chosen) ? newest : [chosen, ...newest],
          );
          throw error;
        }
        const timeline = chosen.health.lastProbe?.timeline;
        if (lease && timeline !== undefined) {
          await lease.record({ node: identityKey(await this.identityOf(chosen)), timeline });
        }
        this.elect(chosen, 'pgpulse');
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        // A split brain has its own event; failed() still tells listeners the promotion failed.
        this.events.failed(error);
        throw error;
      } finally {
        await lease?.release();
        this.promoting = undefined;
        this.offered = undefined;
      }
    })();
    return this.promoting;
  }

  /** pg_promote(), where "recovery is not in progress" (someone else was quicker) is no failure. */
  private async promote(node: ClusterNode): Promise<void> {
    try {
      await this.deps.promote(node);
    } catch (err) {
      if ((err as { code?: unknown }).code !== '55000') throw err;
    }
  }

  /**
   * Right after a fresh round: if a node already left recovery on a timeline newer than the
   * primary's, another instance or an HA system promoted it, and it is followed (true).
   */
  private followPromoted(): boolean {
    const newest = newestWritable(this.nodes);
    if (newest.length > 1) throw this.enterSplitBrain(newest);
    const node = newest[0];
    if (!node) return false;
    const primary = this.primary;
    if (node === primary) return true; // the primary is back: nothing to promote
    const timeline = node.health.lastProbe?.timeline;
    if (
      this.primaryTimeline === undefined ||
      (timeline !== undefined && timeline > this.primaryTimeline)
    ) {
      this.elect(node, 'external');
      return true;
    }
    return false;
  }

  /**
   * The coordinator's record of a promotion newer than the primary we know: follow that node if
   * it is visible and writable, else promote nothing (it may be just out of this instance's
   * reach; promoting another would be a second primary).
   */
  private async followRecorded(lease: PromotionLease): Promise<boolean> {
    const record = await lease.recorded();
    if (!record || (this.primaryTimeline !== undefined && record.timeline <= this.primaryTimeline))
      return false;
    for (const node of this.nodes) {
      if (identityKey(await this.identityOf(node)) !== record.node) continue;
      if (node.health.up && node.health.lastProbe?.inRecovery === false) {
        this.elect(node, 'external');
        return true;
      }
    }
    throw new PgPulseError(
      'PGPULSE_FAILOVER',
      `the coordinator records a promotion of ${record.node} on timeline ${record.timeline} by ` +
        `${record.by}, which this instance cannot see writable; not promoting another node`,
      { retriable: true },
    );
  }

  /** The coordinator's key for this cluster: its system identifier, the same on every node. */
  private async clusterScope(): Promise<string> {
    for (const node of this.nodes) {
      if (!node.health.up) continue;
      const identity = await this.identityOf(node);
      if (identity.systemId !== '') return identity.systemId;
    }
    throw new PgPulseError(
      'PGPULSE_FAILOVER',
      "no node could tell the cluster's system identifier, which names the coordinator's lease",
      { retriable: true },
    );
  }

  /** A probe round that starts now (the one in progress may predate the decision). */
  private async freshRound(): Promise<void> {
    await this.monitor.probeAll();
    await this.monitor.probeAll();
  }

  private identityOf(node: ClusterNode): Promise<NodeIdentity> {
    return this.identities.of(node);
  }

  /** Stops writes to every node (none is the primary) and says so once per episode. */
  private enterSplitBrain(nodes: readonly ClusterNode[]): SplitBrainError {
    for (const node of nodes) node.fenced = true;
    // No node is the primary now, the one elected before included (down or not).
    for (const node of this.nodes) {
      if (node.role !== 'primary') continue;
      node.role = 'replica';
      node.fenced = true;
      node.pool.drain();
    }
    if (this.split) return this.split;
    const error = new SplitBrainError(nodes);
    this.split = error;
    this.downSince ??= performance.now();
    this.events.splitBrain({
      nodes: nodes.map((n) => n.name),
      timeline: nodes[0]?.health.lastProbe?.timeline,
      error,
    });
    return error;
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
    this.split = undefined;
    this.monitor.resetHistory();
    const lost = lostWindow(old === undefined ? undefined : this.lastPrimaryLsn, standbyPosition);
    const durationMs =
      this.downSince === undefined ? undefined : performance.now() - this.downSince;
    this.downSince = undefined;
    this.lastPrimaryLsn = node.health.lastProbe?.currentLsn;
    const timeline = node.health.lastProbe?.timeline;
    if (timeline !== undefined) this.primaryTimeline = timeline;
    this.events.completed({
      from: old?.name,
      to: node.name,
      timeline,
      promotedBy,
      lostWindow: lost,
      durationMs,
    });
    this.electionWaiters.wakeAll();
  }
}
