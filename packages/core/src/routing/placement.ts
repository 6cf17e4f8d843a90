import type { RouteScope } from '../context/index.js';
import { PrimaryUnavailableError, ReadNeedsPrimaryError } from '../errors/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { Classification } from './classification.js';
import type { Router, RoutingReason } from './router.js';

/** A statement's node and connection while it runs. */
export interface Placement {
  readonly node: ClusterNode;
  readonly reason: RoutingReason;
}

/** Bounded waits instead of an immediate fallback or error; 0 disables each. */
export interface PlacementWaits {
  /** Writes while no primary is elected wait up to this long for one (failover.writeWaitMs). */
  readonly writeWaitMs: number;
  readonly primaryElected: (timeoutMs: number) => Promise<void>;
  /** Reads whose context's writes no replica has replayed yet wait up to this (consistency.waitMs). */
  readonly readWaitMs: number;
  readonly nextProbeRound: (timeoutMs: number) => Promise<void>;
  /**
   * Asks for the nodes' positions now (coalesced and rate-bounded by health.positionCheckMs), for
   * a read that went to the primary only because no replica is known to have replayed its
   * context's writes: the next read (or this one, when it may wait) can go to a replica sooner.
   */
  readonly requestPositions: () => void;
  readonly hasWrites: (scope: RouteScope | undefined) => boolean;
  /** Per-statement deadline (pool.statementTimeoutMs); 0 or absent = none. */
  readonly statementTimeoutMs?: number;
  /**
   * During a lazy cold start (only the primary probed, #22): what this statement must wait
   * for before it is placed (the first full health round, for a write or a context that
   * wrote), or undefined when it may go now.
   */
  readonly settling?: (
    cls: Classification,
    scope: RouteScope | undefined,
  ) => Promise<void> | undefined;
}

/**
 * Where a statement that is not pinned starts: the router's decision, and the bounded waits
 * around it (a write waits for a failover to elect a primary, a read for a replica to replay
 * its context's writes).
 */
export class Placer {
  constructor(
    private readonly router: Router,
    private readonly waits: PlacementWaits,
  ) {}

  /** The node a statement should start on, when it is not already pinned. */
  place(
    cls: Classification,
    text: string,
    scope: RouteScope | undefined,
    exclude?: ClusterNode,
  ): Placement {
    const decision = this.router.decide(cls, text, scope);
    if (decision.target === 'primary')
      return { node: this.router.writeNode(), reason: decision.reason };
    return this.router.readNode(scope, exclude);
  }

  /**
   * place(), but a write may wait for a failover to elect a primary, and a read may wait for a
   * replica to replay its context's writes, each up to its configured bound. The placement
   * itself when nothing has to wait (every statement's common case: no promise, no tick).
   */
  placeWithWaits(
    cls: Classification,
    text: string,
    scope: RouteScope | undefined,
    started = performance.now(),
  ): Placement | Promise<Placement> {
    const settling = this.waits.settling?.(cls, scope);
    if (settling) return settling.then(() => this.waitForPlacement(cls, text, scope, started));
    let placement: Placement;
    try {
      placement = this.place(cls, text, scope);
    } catch (err) {
      return this.waitForPlacement(cls, text, scope, started, { failed: err });
    }
    if (placement.reason === 'read-your-writes' || placement.reason === 'no-eligible-replica') {
      // The same test waitForPlacement's first turn makes, here without a promise: a read on
      // a cluster without a usable replica (one node, say) is the common case, and a context
      // with no write to wait for takes the placement as it is.
      if (placement.reason === 'read-your-writes') this.waits.requestPositions();
      if (
        !this.waits.hasWrites(scope) ||
        this.waits.readWaitMs - (performance.now() - started) <= 0
      )
        return placement;
      return this.waitForPlacement(cls, text, scope, started, { placement, asked: true });
    }
    return placement;
  }
  /** placeWithWaits() past its first try: `first` is what that try gave, when it was made. */
  private async waitForPlacement(
    cls: Classification,
    text: string,
    scope: RouteScope | undefined,
    started: number,
    first?: { readonly placement?: Placement; readonly failed?: unknown; readonly asked?: true },
  ): Promise<Placement> {
    let readWaitOver = false;
    let tried = first;
    // placeWithWaits asked for the positions already for its placement.
    let asked = first?.asked === true;
    for (;;) {
      let placement: Placement;
      try {
        if (tried !== undefined && 'failed' in tried) throw tried.failed;
        placement = tried?.placement ?? this.place(cls, text, scope);
      } catch (err) {
        // Every placement that finds no primary waits for one, the read that needs its
        // context's write included (and a read whose replica wait ran out: it lands here too).
        const left = this.primaryWaitMs(err) - (performance.now() - started);
        if (left <= 0) throw err;
        tried = undefined;
        await this.waits.primaryElected(left);
        continue;
      }
      tried = undefined;
      const left = this.waits.readWaitMs - (performance.now() - started);
      // 'read-your-writes': a replica is up but has not replayed this context's write yet, or
      // no probe has bounded that write yet: ask for the positions rather than await a round.
      if (placement.reason === 'read-your-writes' && !asked) this.waits.requestPositions();
      asked = false;
      const replicaMayCatchUp =
        placement.reason === 'no-eligible-replica' || placement.reason === 'read-your-writes';
      if (readWaitOver || !replicaMayCatchUp || left <= 0 || !this.waits.hasWrites(scope)) {
        return placement;
      }
      placement.node.breaker.releaseTrial();
      await this.waits.nextProbeRound(left);
      if (performance.now() - started >= this.waits.readWaitMs) readWaitOver = true;
    }
  }

  /** How long a placement that failed with `err` may wait for a primary in all. */
  private primaryWaitMs(err: unknown): number {
    if (err instanceof PrimaryUnavailableError) return this.waits.writeWaitMs;
    if (err instanceof ReadNeedsPrimaryError)
      return Math.max(this.waits.writeWaitMs, this.waits.readWaitMs);
    return 0;
  }
}
