/**
 * Samples `cluster.stats()` a few times a second: per-node rates for the live view, and the
 * statements each role served. A node's role can change between two samples (a replica is
 * promoted; the old primary is demoted as it is replaced), so a delta is credited to the
 * primary when the node was the primary at either end of the interval: the writes the old
 * primary acknowledged just before the kill are not a replica's writes because the next
 * sample came after the promotion.
 */
import type { Cluster, NodeStats } from '@pgpulse/core';

export interface NodeRow {
  readonly name: string;
  readonly role: string;
  readonly up: boolean;
  readonly fenced: boolean;
  readonly lagging: boolean;
  readonly lagMs: number | undefined;
  readonly readsPerSec: number;
  readonly writesPerSec: number;
  readonly poolInUse: number;
  readonly poolTotal: number;
  readonly poolMax: number;
  readonly breaker: string;
}

export interface RoleTotals {
  reads: number;
  writes: number;
}

export class StatsSampler {
  /** Statements served, by the role of the node at the time. */
  readonly byRole: Record<'primary' | 'replica', RoleTotals> = {
    primary: { reads: 0, writes: 0 },
    replica: { reads: 0, writes: 0 },
  };
  rows: NodeRow[] = [];
  private last = new Map<string, { reads: number; writes: number; at: number; primary: boolean }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly intervalMs: number,
    private readonly onSample: (rows: readonly NodeRow[]) => void,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Takes a last sample; idempotent. */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  /** Reads one node has served so far (pgpulse's counter). */
  reads(node: string): number {
    return this.cluster.stats().nodes.find((n) => n.name === node)?.counters.reads ?? 0;
  }

  private sample(): void {
    const now = performance.now();
    const stats = this.cluster.stats();
    this.rows = stats.nodes.map((node) => this.row(node, now));
    this.onSample(this.rows);
  }

  private row(node: NodeStats, now: number): NodeRow {
    const { reads, writes } = node.counters;
    const before = this.last.get(node.name);
    const primaryNow = node.role === 'primary';
    this.last.set(node.name, { reads, writes, at: now, primary: primaryNow });
    const seconds = before ? Math.max(0.001, (now - before.at) / 1000) : 1;
    const dReads = before ? reads - before.reads : 0;
    const dWrites = before ? writes - before.writes : 0;
    const role = primaryNow || before?.primary ? 'primary' : 'replica';
    this.byRole[role].reads += dReads;
    this.byRole[role].writes += dWrites;
    const fenced = this.cluster.nodes.find((n) => n.name === node.name)?.fenced ?? false;
    return {
      name: node.name,
      role: node.role,
      up: node.up,
      fenced,
      lagging: node.lagging,
      lagMs: node.lagMs,
      readsPerSec: Math.round(dReads / seconds),
      writesPerSec: Math.round(dWrites / seconds),
      poolInUse: node.pool.inUse,
      poolTotal: node.pool.total,
      poolMax: node.pool.max,
      breaker: node.breaker,
    };
  }
}
