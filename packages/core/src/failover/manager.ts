import type { ResolvedFailoverConfig } from '../config/index.js';
import { PgPulseError, SplitBrainError } from '../errors/index.js';
import { formatLsn, type HealthMonitor, type Lsn } from '../health/index.js';
import type { ClusterNode } from '../topology/index.js';
import { type CandidateView, identityKey, type NodeIdentity, pickCandidate } from './candidate.js';
import type { FailoverCoordinator, PromotionLease } from './coordinator/types.js';

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

/** How often (in probe rounds) `automatic` without a coordinator looks for other instances. */
const INSTANCE_CHECK_ROUNDS = 300;

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
  private readonly electionWaiters = new Set<() => void>();
  private readonly identities = new Map<ClusterNode, NodeIdentity>();
  /** The last timeline each node reported (a standby's WAL receiver row comes and goes). */
  private readonly timelines = new Map<ClusterNode, number>();
  private rounds = 0;
  private instancesSeen = 1;

  constructor(
    private readonly nodes: readonly ClusterNode[],
    private readonly config: ResolvedFailoverConfig,
    private readonly monitor: HealthMonitor,
    private readonly deps: FailoverDeps,
    private readonly events: FailoverEvents,
  ) {}

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

  /**
   * The standby this instance would promote now, by the rule every instance computes alike
   * (most WAL, then newest timeline, then server identity). Reads each standby's identity once.
   */
  async candidate(): Promise<ClusterNode | undefined> {
    const standbys = this.nodes.filter((node) => {
      const probe = node.health.lastProbe;
      if (!node.health.up || !probe?.inRecovery) return false;
      // A standby on an older timeline than the primary's is on a branch of its own.
      const timeline = probe.timeline ?? this.timelines.get(node);
      return (
        this.primaryTimeline === undefined ||
        timeline === undefined ||
        timeline >= this.primaryTimeline
      );
    });
    const views = await Promise.all(
      standbys.map(async (node): Promise<CandidateView & { node: ClusterNode }> => {
        const probe = node.health.lastProbe;
        return {
          node,
          lsn: maxLsn(probe?.receiveLsn, probe?.replayLsn),
          timeline: probe?.timeline ?? this.timelines.get(node),
          identity: await this.identityOf(node),
        };
      }),
    );
    return pickCandidate(views)?.node;
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
      for (const wake of [...this.electionWaiters]) wake();
    }
    this.fenceOthers();
    this.checkInstances();
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

  private async identityOf(node: ClusterNode): Promise<NodeIdentity> {
    const known = this.identities.get(node);
    if (known) return known;
    try {
      const identity = await this.deps.identify(node);
      this.identities.set(node, identity);
      return identity;
    } catch {
      // Not cached: the configured address is a fallback only while the server cannot say.
      return { systemId: '', address: `${node.host.toLowerCase()}:${node.port}` };
    }
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

  /** `automatic` without a coordinator is for one app instance: say so when there are more. */
  private checkInstances(): void {
    if (this.config.promotion !== 'automatic' || this.deps.coordinator) return;
    const early = this.rounds === 1 || this.rounds === 10 || this.rounds === 50;
    if (!early && this.rounds % INSTANCE_CHECK_ROUNDS !== 0) return;
    void this.deps
      .countInstances()
      .then((instances) => {
        if (instances <= 1 || instances === this.instancesSeen) return;
        this.instancesSeen = instances;
        this.events.severalInstances({
          instances,
          applicationName: this.deps.applicationName,
          advice:
            "failover.promotion 'automatic' without failover.coordinator is for a single app " +
            "instance: with several, use 'external' with an HA manager (Patroni) or set " +
            'failover.coordinator (etcd) so that only one instance promotes',
        });
      })
      .catch(() => {});
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
    // Only a real window: a standby at or past the old primary's last probed position (the probe
    // was older than the crash) lost nothing that pgpulse saw; `from` past `to` is no window.
    const lost =
      this.lastPrimaryLsn !== undefined &&
      standbyPosition !== undefined &&
      old !== undefined &&
      this.lastPrimaryLsn > standbyPosition
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

/** The reachable writable nodes on the highest timeline among them (more than one: split brain). */
function newestWritable(nodes: readonly ClusterNode[]): ClusterNode[] {
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
