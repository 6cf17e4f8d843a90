import type { ResolvedHealthConfig, ResolvedReplicaLagConfig } from '../config/index.js';
import type { Lsn } from './lsn.js';
import type { MonitorEvents, MonitoredNode } from './node-health.js';
import type { NodeProber } from './probe.js';

interface PrimarySample {
  readonly at: number;
  readonly lsn: Lsn;
}

const HISTORY = 2048;

/**
 * Probes every node once per interval (concurrently, each bounded by the probe timeout, never
 * on the query path) and derives reachability, role, LSNs and lag.
 *
 * Lag in time is "how long ago the primary already had WAL this replica has not replayed",
 * read off a history of the primary's LSN samples. It is 0 on an idle primary (nothing newer
 * exists), grows while replay is paused or the standby stopped receiving, and needs no clock
 * agreement between servers — unlike `now() - pg_last_xact_replay_timestamp()`.
 */
export class HealthMonitor<N extends MonitoredNode = MonitoredNode> {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly history: PrimarySample[] = [];
  private historyPrimary: N | undefined;
  private readonly waiters = new Set<() => void>();
  rounds = 0;
  /** On-demand position checks (`requestPositions`) completed. */
  positionChecks = 0;
  private lastCheckAt = Number.NEGATIVE_INFINITY;
  private checkTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly nodes: readonly N[],
    private readonly probers: ReadonlyMap<N, NodeProber>,
    private readonly config: ResolvedHealthConfig,
    private readonly lag: ResolvedReplicaLagConfig,
    private readonly primaryOf: () => N | undefined,
    private readonly events: MonitorEvents<N>,
  ) {}

  start(): Promise<void> {
    this.startTimer();
    return this.probeAll();
  }

  /**
   * A cold start that opens only what a first read needs (#22): the periodic rounds are
   * scheduled (unref'd), and only the primary is probed now. When it answers as a writable
   * primary, the replicas stay unprobed until the first full round (the first periodic tick,
   * or `firstRound()` from a caller that needs every node judged); until then no read goes to
   * them (`health/read-checks.ts` `unprobed`). When it does not (down, slow, a standby), the
   * other nodes are probed at once and the round completes as a full one, so failover sees
   * every node as before. A probeAll() meanwhile shares this. Resolves true when only the
   * primary was probed.
   */
  async startLazily(): Promise<boolean> {
    this.startTimer();
    const primary = this.primaryOf();
    if (!primary || this.nodes.length === 1 || this.running || this.rounds > 0) {
      await this.probeAll();
      return false;
    }
    let primaryOnly = false;
    const run = async () => {
      await this.probeNode(primary);
      const health = primary.health;
      if (health.up && health.consecutiveFailures === 0 && health.lastProbe?.inRecovery === false) {
        this.recordPrimary();
        primaryOnly = true;
        for (const wake of [...this.waiters]) wake();
        return;
      }
      await this.round(primary);
    };
    this.running = run().finally(() => {
      this.running = undefined;
    });
    await this.running;
    return primaryOnly;
  }

  /** Resolves once a full round (every node probed) has completed, running one if needed. */
  async firstRound(): Promise<void> {
    while (this.rounds === 0 && !this.stopped) await this.probeAll();
  }

  private startTimer(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.probeAll(), this.config.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.checkTimer);
    this.checkTimer = undefined;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const prober of this.probers.values()) prober.close();
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** One probe of every node; overlapping calls share the round in progress. */
  probeAll(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Asks for the primary's WAL position and the replicas' replay positions now, instead of at
   * the next probe round (#11 item 8): the executor calls it when a read went to the primary
   * only because no replica was proven to have replayed its context's writes. Bounded: at most
   * one check starts every `health.positionCheckMs` (a request inside the interval schedules
   * one at its end; 0 turns checks off), and each node has one statement in flight on its
   * probe connection (`NodeProber.probe` shares a probe already running, the periodic one
   * included), so a slow node delays only the reads that need it. A check only adds
   * positions: a failed one changes no node's up/down state or failure count (the periodic
   * probes decide those), and only reads allowed to wait (`consistency.waitMs`) wait for it.
   */
  requestPositions(): void {
    const interval = this.config.positionCheckMs;
    if (interval <= 0 || this.stopped || this.checkTimer) return;
    const wait = this.lastCheckAt + interval - performance.now();
    if (wait > 0) {
      this.checkTimer = setTimeout(() => {
        this.checkTimer = undefined;
        this.requestPositions();
      }, wait);
      this.checkTimer.unref();
      return;
    }
    this.lastCheckAt = performance.now();
    void this.checkPositions();
  }

  /**
   * The primary first, then the replicas: a replica's replay read after the primary's position
   * can prove in this one check that it has every write made before the check (probed together,
   * the replay would be read before the position and a second check would be needed). Waiting
   * reads are woken as each replica answers.
   */
  private async checkPositions(): Promise<void> {
    const primary = this.primaryOf();
    if (primary) {
      await this.checkNode(primary);
      if (this.stopped) return;
      this.recordPrimary();
    }
    await Promise.all(
      this.nodes.map(async (node) => {
        if (node === primary || node.role !== 'replica') return;
        await this.checkNode(node);
        if (this.stopped) return;
        this.updateLag(node);
        for (const wake of [...this.waiters]) wake();
      }),
    );
    this.positionChecks++;
  }

  /** One position probe of a node that is up; a failure is left to the periodic probe. */
  private async checkNode(node: N): Promise<void> {
    const prober = this.probers.get(node);
    if (!prober || !node.health.up) return;
    try {
      const result = await prober.probe();
      // Newer than what is known only: a periodic probe may have finished meanwhile.
      const last = node.health.lastProbe;
      if (!last || result.sentAt > last.sentAt) node.health.lastProbe = result;
    } catch {
      // Not counted: on-demand checks must not hasten a node-down verdict (or a failover).
    }
  }

  /**
   * Resolves after the next completed round or on-demand position check, or after `timeoutMs`.
   */
  nextRound(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.waiters;
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  /**
   * The primary's LSN from the first probe sent at or after `time` (performance.now clock):
   * an upper bound of any commit that finished before `time`, so a replica that replayed past
   * it has every write made until then.
   */
  primaryLsnSince(time: number): Lsn | undefined {
    for (const sample of this.history) if (sample.at >= time) return sample.lsn;
    // Samples are kept only when the LSN moves; the latest probe may be newer than the last one.
    const primary = this.primaryOf();
    const last = primary?.health.lastProbe;
    if (
      primary === this.historyPrimary &&
      last &&
      last.sentAt >= time &&
      last.currentLsn !== undefined
    ) {
      return last.currentLsn;
    }
    return undefined;
  }

  /** Forget the primary's history (a new primary starts a new timeline). */
  resetHistory(): void {
    this.history.length = 0;
    this.historyPrimary = undefined;
  }

  /** One probe of every node (but `probed`, whose probe of this round is done). */
  private async round(probed?: N): Promise<void> {
    await Promise.all(
      this.nodes.map((node) => (node === probed ? undefined : this.probeNode(node))),
    );
    this.recordPrimary();
    for (const node of this.nodes) {
      if (node.role === 'replica') this.updateLag(node);
      node.health.judged = true;
    }
    this.rounds++;
    this.events.round();
    for (const wake of [...this.waiters]) wake();
  }

  private async probeNode(node: N): Promise<void> {
    const prober = this.probers.get(node);
    if (!prober) return;
    const health = node.health;
    try {
      const result = await prober.probe();
      health.lastProbe = result;
      health.lastError = undefined;
      health.consecutiveFailures = 0;
      // Not the first statement on a new connection (its backend's warm-up, see ProbeResult).
      if (!result.firstOnConnection) node.recordLatency(result.roundTripMs);
      // The breaker is on the monotonic epoch clock; probe times are performance.now().
      node.breaker.nodeAnswered(performance.timeOrigin + result.sentAt);
      if (!health.up) {
        health.up = true;
        this.events.nodeUp(node);
      }
    } catch (err) {
      health.consecutiveFailures++;
      health.lastError = err instanceof Error ? err.message : String(err);
      // A refused connection (or a server saying it is shutting down or starting up) is a
      // replica telling us it is down; only silence (a timeout, which load causes too) needs
      // several probes in a row to be believed. The primary keeps the count: its verdict
      // starts failovers, which a restart shorter than the count must not.
      const definitive = node.role === 'replica' && isDownVerdict(err);
      if (
        health.up &&
        (definitive || health.consecutiveFailures >= this.config.maxConsecutiveFailures)
      ) {
        health.up = false;
        health.lagMs = undefined;
        health.lagBytes = undefined;
        if (node.role === 'replica') {
          // Its connections may sit on a partitioned link for as long as it lasts: none is
          // reused, and reads waiting on it are cut so their retry goes to another replica.
          // (Not the primary's: a cut write would leave its outcome unknown.)
          node.pool.drain();
          node.abortOneOffReads();
        }
        this.events.nodeDown(node, health.lastError);
      }
    }
  }

  private recordPrimary(): void {
    const primary = this.primaryOf();
    if (primary !== this.historyPrimary) this.resetHistory();
    this.historyPrimary = primary;
    const probe = primary?.health.lastProbe;
    if (
      !primary ||
      !probe ||
      primary.health.consecutiveFailures > 0 ||
      probe.currentLsn === undefined
    )
      return;
    const last = this.history[this.history.length - 1];
    if (last && last.lsn >= probe.currentLsn) return;
    if (this.history.length >= HISTORY) this.history.shift();
    this.history.push({ at: probe.sentAt, lsn: probe.currentLsn });
  }

  private updateLag(node: N): void {
    const health = node.health;
    const probe = health.lastProbe;
    if (!health.up || !probe || health.consecutiveFailures > 0) return;
    const replay = probe.replayLsn ?? probe.receiveLsn;
    const primaryDown = !this.primaryOf()?.health.up;
    const newest = this.history[this.history.length - 1];
    if (replay === undefined || !newest || primaryDown) {
      // With no live primary to compare with, a standby that replayed all it received is as
      // current as anything that can serve; one still replaying keeps its last figures.
      if (probe.receiveLsn !== undefined && replay === probe.receiveLsn) {
        health.lagBytes = 0;
        health.lagMs = 0;
      }
    } else {
      health.lagBytes = newest.lsn > replay ? Number(newest.lsn - replay) : 0;
      let firstAhead: PrimarySample | undefined;
      for (const sample of this.history) {
        if (sample.lsn > replay) {
          firstAhead = sample;
          break;
        }
      }
      health.lagMs = firstAhead ? Math.max(0, probe.sentAt - firstAhead.at) : 0;
    }
    this.updateLagging(node);
  }

  private updateLagging(node: N): void {
    const health = node.health;
    const { maxLagMs, maxLagBytes, hysteresis } = this.lag;
    if (maxLagMs === null && maxLagBytes === null) return;
    const ms = health.lagMs ?? 0;
    const bytes = health.lagBytes ?? 0;
    const over =
      (maxLagMs !== null && ms > maxLagMs) || (maxLagBytes !== null && bytes > maxLagBytes);
    const under =
      (maxLagMs === null || ms <= maxLagMs * (1 - hysteresis)) &&
      (maxLagBytes === null || bytes <= maxLagBytes * (1 - hysteresis));
    if (!health.lagging && over) {
      health.lagging = true;
      this.events.lag(node, true);
    } else if (health.lagging && under) {
      health.lagging = false;
      this.events.lag(node, false);
    }
  }
}

const DOWN_CODES = new Set(['ECONNREFUSED', '57P01', '57P02', '57P03']);

/** True for a probe failure that says the node is down, as opposed to slow or unreachable. */
function isDownVerdict(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && DOWN_CODES.has(code)) return true;
    if (e instanceof AggregateError && e.errors.some((inner) => isDownVerdict(inner))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
