/**
 * The scripted faults, at fixed fractions of the run so that a short run compresses them:
 * pause WAL replay on a replica (pgpulse takes it out of rotation, then back), run the
 * unindexed scan (pgpulse captures its plan), kill the primary (pgpulse promotes the most
 * advanced replica; the demo plays the HA system's part and re-points the other replica).
 */
import type { Cluster } from '@pgpulse/core';
import type { SandboxCluster } from '@pgpulse/sandbox';
import type { OrmWorker } from './orm/types.js';
import type { Acknowledged } from './workload.js';
import { sleep } from './workload.js';

export type FaultAction = 'pause-replay' | 'resume-replay' | 'slow-query' | 'kill-primary';

export interface FaultStep {
  readonly atMs: number;
  readonly action: FaultAction;
}

/** When each fault happens in a run of `durationMs`. */
export function faultPlan(durationMs: number): FaultStep[] {
  const at = (fraction: number) => Math.round(durationMs * fraction);
  return [
    { atMs: at(0.1), action: 'pause-replay' },
    { atMs: at(0.28), action: 'resume-replay' },
    { atMs: at(0.45), action: 'slow-query' },
    // Late enough that the resumed replica has caught up and rejoined before the kill, even
    // on a loaded machine; early enough to see writes resume.
    { atMs: at(0.55), action: 'kill-primary' },
  ];
}

/** The unindexed scan's threshold: market_data has no index on volume. */
export const BIG_PRINT_VOLUME = 95_000;
/** Matches the scan's normalized text in pgpulse's slow-query log. */
export const SLOW_QUERY_PATTERN = /market_data[\s\S]*volume\W*>=/i;

export interface ReplayPauseReport {
  /** pgpulse's name of the paused replica. */
  readonly node: string;
  readonly pausedAtMs: number;
  /** From the pause to pgpulse's `lag` event taking the replica out of rotation. */
  leftRotationAfterMs?: number;
  /** Reads the paused replica served between leaving rotation and the resume. */
  readsWhileOut?: number;
  resumedAtMs?: number;
  /** From the resume to pgpulse's `lag` event putting it back. */
  rejoinedAfterMs?: number;
  /** Reads it served from rejoining until the primary was killed (or the end). */
  readsAfterRejoin?: number;
}

export interface FailoverReport {
  readonly oldPrimary: string;
  readonly killedAtMs: number;
  /** Each step in ms after the kill. */
  detectedMs?: number;
  detectedReason?: string;
  promotedMs?: number;
  promoted?: string;
  promotedBy?: string;
  timeline?: number;
  /** pgpulse's own figure: detection to election. */
  electionMs?: number;
  /** When the other replicas streamed from the new primary (the HA system's part). */
  reattachedMs?: number;
  followers: string[];
  /** First write acknowledged by the new primary. */
  firstWriteMs?: number;
  error?: string;
}

export interface SlowQueryRun {
  readonly orm: string;
  readonly atMs: number;
  readonly clientMs: number[];
  error?: string;
}

export interface FaultContext {
  readonly sandbox: SandboxCluster;
  readonly cluster: Cluster;
  /** Runs the slow query. */
  readonly reporter: OrmWorker;
  readonly now: () => number;
  readonly log: (kind: string, text: string) => void;
}

export class FaultScript {
  replayPause: ReplayPauseReport | undefined;
  failover: FailoverReport | undefined;
  slowQuery: SlowQueryRun | undefined;
  private promotedAtMs: number | undefined;
  private reattach: Promise<void> | undefined;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(private readonly ctx: FaultContext) {
    this.listen();
  }

  /** Feed every acknowledged write here: the first one after the election ends the failover. */
  onAck = (ack: Acknowledged): void => {
    const failover = this.failover;
    if (!failover || failover.firstWriteMs !== undefined || this.promotedAtMs === undefined) return;
    if (ack.ackedMs >= this.promotedAtMs) {
      failover.firstWriteMs = Math.round(ack.ackedMs - failover.killedAtMs);
      this.ctx.log(
        'failover',
        `first write acknowledged by ${failover.promoted ?? 'the new primary'} (${ack.orm}) ` +
          `${failover.firstWriteMs} ms after the kill`,
      );
    }
  };

  /** Runs the steps of `plan`, each at its time after `startMs`, until done or aborted. */
  async run(plan: readonly FaultStep[], startMs: number, signal: AbortSignal): Promise<void> {
    for (const step of plan) {
      await sleep(startMs + step.atMs - this.ctx.now(), signal);
      if (signal.aborted) return;
      try {
        await this.perform(step.action);
      } catch (err) {
        this.ctx.log('error', `${step.action} failed: ${errorText(err)}`);
      }
    }
  }

  /** Waits (bounded) for the HA part of a failover to finish, then stops listening. */
  async finish(timeoutMs: number): Promise<void> {
    if (this.reattach) {
      const timeout = new AbortController();
      await Promise.race([this.reattach, sleep(timeoutMs, timeout.signal)]);
      timeout.abort();
    }
    if (this.replayPause && this.replayPause.readsAfterRejoin === undefined) {
      this.snapshotRejoinedReads();
    }
    for (const off of this.unsubscribe) off();
  }

  private async perform(action: FaultAction): Promise<void> {
    switch (action) {
      case 'pause-replay':
        return this.pauseReplay();
      case 'resume-replay':
        return this.resumeReplay();
      case 'slow-query':
        return this.runSlowQuery();
      case 'kill-primary':
        return this.killPrimary();
    }
  }

  private async pauseReplay(): Promise<void> {
    // The last replica, so the other one keeps serving reads.
    const replicas = this.ctx.cluster.nodes.filter((n) => n.role === 'replica' && !n.fenced);
    const node = replicas[replicas.length - 1];
    if (!node) return;
    await this.ctx.sandbox.pauseReplay(this.sandboxName(node.name));
    this.replayPause = { node: node.name, pausedAtMs: Math.round(this.ctx.now()) };
    this.ctx.log('fault', `paused WAL replay on ${node.name}: it falls behind while writes go on`);
  }

  private async resumeReplay(): Promise<void> {
    const pause = this.replayPause;
    if (!pause) return;
    // Stamp before awaiting: the replica may catch up, and pgpulse report it back in rotation,
    // before the resume call itself has returned; a later stamp would miss that event.
    pause.resumedAtMs = Math.round(this.ctx.now());
    await this.ctx.sandbox.resumeReplay(this.sandboxName(pause.node));
    if (pause.leftRotationAfterMs !== undefined && pause.readsWhileOut === undefined) {
      pause.readsWhileOut = this.reads(pause.node) - this.outAtReads;
    }
    this.ctx.log('fault', `resumed WAL replay on ${pause.node}: it catches up`);
  }

  private async runSlowQuery(): Promise<void> {
    const worker = this.ctx.reporter;
    const run: SlowQueryRun = { orm: worker.name, atMs: Math.round(this.ctx.now()), clientMs: [] };
    this.slowQuery = run;
    this.ctx.log(
      'fault',
      `${worker.name}: "biggest prints" report, an unindexed scan of market_data (volume >= ${BIG_PRINT_VOLUME})`,
    );
    try {
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        await this.ctx.cluster.context(() => worker.biggestPrints(BIG_PRINT_VOLUME));
        run.clientMs.push(Math.round(performance.now() - started));
      }
    } catch (err) {
      run.error = errorText(err);
      throw err;
    }
  }

  private async killPrimary(): Promise<void> {
    const primary = this.ctx.cluster.nodes.find((n) => n.role === 'primary');
    if (!primary) throw new Error('no primary to kill');
    if (this.replayPause && this.replayPause.readsAfterRejoin === undefined) {
      this.snapshotRejoinedReads();
    }
    const killedAtMs = this.ctx.now();
    this.failover = { oldPrimary: primary.name, killedAtMs: Math.round(killedAtMs), followers: [] };
    this.ctx.log(
      'fault',
      `killed the primary (${primary.name}): immediate shutdown, as in a crash`,
    );
    await this.ctx.sandbox.kill(this.sandboxName(primary.name));
  }

  private listen(): void {
    const { cluster } = this.ctx;
    const onLag = (event: { node: string; over: boolean }) => {
      const pause = this.replayPause;
      if (!pause || event.node !== pause.node) return;
      const now = this.ctx.now();
      if (event.over && pause.leftRotationAfterMs === undefined) {
        pause.leftRotationAfterMs = Math.round(now - pause.pausedAtMs);
        this.outAtReads = this.reads(pause.node);
      } else if (
        !event.over &&
        pause.resumedAtMs !== undefined &&
        pause.rejoinedAfterMs === undefined
      ) {
        pause.rejoinedAfterMs = Math.round(now - pause.resumedAtMs);
        this.rejoinAtReads = this.reads(pause.node);
      }
    };
    const onStarted = (event: { primary: string; reason: string }) => {
      const failover = this.failover;
      if (!failover || failover.detectedMs !== undefined) return;
      failover.detectedMs = Math.round(this.ctx.now() - failover.killedAtMs);
      failover.detectedReason = event.reason;
    };
    const onCompleted = (event: {
      to: string;
      promotedBy: string;
      timeline: number | undefined;
      durationMs: number | undefined;
    }) => {
      const failover = this.failover;
      if (!failover || failover.promotedMs !== undefined) return;
      const now = this.ctx.now();
      this.promotedAtMs = now;
      failover.promotedMs = Math.round(now - failover.killedAtMs);
      failover.promoted = event.to;
      failover.promotedBy = event.promotedBy;
      if (event.timeline !== undefined) failover.timeline = event.timeline;
      if (event.durationMs !== undefined) failover.electionMs = Math.round(event.durationMs);
      this.reattach = this.reattachReplicas(event.to).catch((err: unknown) => {
        failover.error = `re-pointing the replicas failed: ${errorText(err)}`;
        this.ctx.log('error', failover.error);
      });
    };
    const onFailed = (event: { error: Error }) => {
      if (this.failover) this.failover.error = event.error.message;
    };
    cluster.on('lag', onLag);
    cluster.on('failover-started', onStarted);
    cluster.on('failover-completed', onCompleted);
    cluster.on('failover-failed', onFailed);
    this.unsubscribe.push(
      () => cluster.off('lag', onLag),
      () => cluster.off('failover-started', onStarted),
      () => cluster.off('failover-completed', onCompleted),
      () => cluster.off('failover-failed', onFailed),
    );
  }

  /**
   * The HA system's part, which an application library does not do: point the remaining
   * replicas at the new primary, so they follow it (and synchronous commits can complete).
   */
  private async reattachReplicas(promoted: string): Promise<void> {
    const failover = this.failover!;
    const { sandbox } = this.ctx;
    const target = this.sandboxName(promoted);
    const others = sandbox.all.filter(
      (n) => n.running && n.role === 'replica' && n.name !== target,
    );
    await Promise.all(others.map((n) => sandbox.follow(n.name, target)));
    failover.followers = others.map((n) => this.pgpulseName(n.name));
    failover.reattachedMs = Math.round(this.ctx.now() - failover.killedAtMs);
    if (failover.followers.length > 0) {
      this.ctx.log(
        'ha',
        `${failover.followers.join(', ')} now streaming from ${promoted} (the HA system's part)`,
      );
    }
  }

  private outAtReads = 0;
  private rejoinAtReads: number | undefined;

  private snapshotRejoinedReads(): void {
    const pause = this.replayPause;
    if (!pause || this.rejoinAtReads === undefined) return;
    pause.readsAfterRejoin = this.reads(pause.node) - this.rejoinAtReads;
  }

  private reads(node: string): number {
    return this.ctx.cluster.stats().nodes.find((n) => n.name === node)?.counters.reads ?? 0;
  }

  /** pgpulse names nodes 'primary', 'replica-1', ...; the sandbox 'primary', 'replica1', ...: match by port. */
  private sandboxName(pgpulseName: string): string {
    const node = this.ctx.cluster.nodes.find((n) => n.name === pgpulseName);
    const match = this.ctx.sandbox.all.find((n) => n.port === node?.port);
    if (!match) throw new Error(`no sandbox node serves pgpulse node ${pgpulseName}`);
    return match.name;
  }

  private pgpulseName(sandboxName: string): string {
    const port = this.ctx.sandbox.node(sandboxName).port;
    return this.ctx.cluster.nodes.find((n) => n.port === port)?.name ?? sandboxName;
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
}
