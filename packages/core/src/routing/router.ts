import type { Balancer } from '../balancing/index.js';
import type { ConsistencyLevel, LagPolicy } from '../config/index.js';
import type { RouteScope } from '../context/index.js';
import {
  NoHealthyReplicaError,
  PrimaryUnavailableError,
  ReadNeedsPrimaryError,
} from '../errors/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { Classification } from './classification.js';
import type { ReadCheck, ReadCheckKind } from './read-pipeline.js';
import type { StatementPolicy } from './statement-policy.js';

/**
 * Why a statement went where it went: the classifier's reason for writes, or one of the
 * router's own. Counted per reason in `cluster.stats()`.
 */
export type RoutingReason =
  | Classification['reason']
  | 'replica'
  | 'scope-primary'
  | 'consistency-strong'
  | 'read-write-split-off'
  | 'catalog-volatile'
  | 'force-primary-pattern'
  | 'no-eligible-replica'
  | 'least-lagged'
  | 'read-your-writes'
  | 'retry'
  | 'replica-refused'
  | 'learned-refusal'
  | 'pinned';

export interface RouterOptions {
  readonly readWriteSplit: boolean;
  readonly lagPolicy: LagPolicy;
  /**
   * The cluster-wide level (`consistency.level`): a scope without its own level reads at this
   * one, so 'strong' means the same set for the cluster, a context or a call.
   */
  readonly consistency?: ConsistencyLevel;
  /** Why there is no primary when failover knows better than "none" (e.g. a split brain). */
  readonly noPrimary?: () => PrimaryUnavailableError | undefined;
  /** What keeps a replica from serving a read, in order (routing/read-pipeline.ts). */
  readonly readChecks: readonly ReadCheck[];
}

export interface ReadChoice {
  readonly node: ClusterNode;
  readonly reason: RoutingReason;
}

export class Router {
  private readonly checks: readonly ReadCheck[];

  constructor(
    readonly nodes: readonly ClusterNode[],
    private readonly balancer: Balancer,
    private readonly policy: StatementPolicy,
    private readonly options: RouterOptions,
  ) {
    this.checks = options.readChecks;
  }

  /** The consistency level a read in this scope is held to: its own, else the cluster's. */
  levelOf(scope: RouteScope | undefined): ConsistencyLevel {
    return scope?.consistency ?? this.options.consistency ?? 'read-your-writes';
  }

  /** The node that takes writes now. */
  primary(): ClusterNode | undefined {
    for (const node of this.nodes) if (node.role === 'primary') return node;
    return undefined;
  }

  /** The primary, or a retriable error that says why it cannot take a statement now. */
  writeNode(): ClusterNode {
    const primary = this.primary();
    if (!primary)
      throw (
        this.options.noPrimary?.() ??
        new PrimaryUnavailableError('no node is currently the primary')
      );
    if (!primary.health.up) {
      throw new PrimaryUnavailableError(
        `primary "${primary.name}" failed its health probes (${primary.health.lastError ?? 'unreachable'}); waiting for a failover`,
      );
    }
    if (!primary.breaker.tryAcquire()) {
      throw new PrimaryUnavailableError(
        `the circuit breaker of primary "${primary.name}" is open after repeated connection failures`,
      );
    }
    return primary;
  }

  /**
   * Where a statement outside any pinned connection goes. Returns the target role and reason;
   * the caller then takes `writeNode()` or `readNode()`.
   */
  decide(
    cls: Classification,
    text: string,
    scope: RouteScope | undefined,
  ): { target: 'primary' | 'replica'; reason: RoutingReason } {
    if (cls.kind === 'write') return { target: 'primary', reason: cls.reason };
    if (!this.options.readWriteSplit) return { target: 'primary', reason: 'read-write-split-off' };
    if (scope?.target === 'primary') return { target: 'primary', reason: 'scope-primary' };
    if (this.levelOf(scope) === 'strong')
      return { target: 'primary', reason: 'consistency-strong' };
    const forced = this.policy.forcesPrimary(cls, text);
    if (forced) return { target: 'primary', reason: forced };
    return {
      target: 'replica',
      reason: cls.reason === 'hint-replica' ? 'hint-replica' : 'replica',
    };
  }

  /**
   * An eligible replica by the balancer, or what the lag policy says when none is: the primary
   * (`fallback`, `least-lagged` when nothing is reachable) or NoHealthyReplicaError (`error`).
   */
  readNode(scope: RouteScope | undefined, exclude?: ClusterNode): ReadChoice {
    const eligible: ClusterNode[] = [];
    let reasons: Record<string, string> | undefined;
    let consistencyBlocked = false;
    let unprobed = false;
    for (const node of this.nodes) {
      if (node.role !== 'replica' || node === exclude) continue;
      const failed = this.failedCheck(node, scope, true);
      if (failed === undefined) eligible.push(node);
      else {
        reasons ??= {};
        reasons[node.name] = failed.why;
        if (failed.kind === 'consistency') consistencyBlocked = true;
        else if (failed.kind === 'unprobed') unprobed = true;
      }
    }
    // Half-open breakers admit one trial: take the slot only for the node actually chosen.
    while (eligible.length > 0) {
      const picked = this.balancer.pick(eligible);
      if (!picked) break;
      if (picked.breaker.tryAcquire()) {
        picked.reserve();
        return { node: picked, reason: 'replica' };
      }
      eligible.splice(eligible.indexOf(picked), 1);
    }
    if (consistencyBlocked) return { node: this.primaryForRead(), reason: 'read-your-writes' };
    // A cold start that has not probed every replica yet: the primary, even with lagPolicy 'error'.
    if (unprobed) return { node: this.writeNode(), reason: 'no-eligible-replica' };
    if (this.options.lagPolicy === 'least-lagged') {
      const least = this.leastLagged(scope, exclude);
      if (least) return { node: least, reason: 'least-lagged' };
    }
    if (this.options.lagPolicy === 'error') throw new NoHealthyReplicaError(reasons ?? {});
    return { node: this.writeNode(), reason: 'no-eligible-replica' };
  }

  /**
   * The primary for a read that only it can serve (no replica has provably replayed what the
   * context wrote or read): when there is none, the error says it is such a read, not a write.
   */
  private primaryForRead(): ClusterNode {
    try {
      return this.writeNode();
    } catch (err) {
      if (!(err instanceof PrimaryUnavailableError)) throw err;
      const why = err.message
        .replace(/^No primary can accept writes: /, '')
        .split('. The write')[0];
      throw new ReadNeedsPrimaryError(why ?? 'no primary is up', { cause: err });
    }
  }

  /** Among replicas that pass every hard check, the one least behind. */
  private leastLagged(
    scope: RouteScope | undefined,
    exclude: ClusterNode | undefined,
  ): ClusterNode | undefined {
    let best: ClusterNode | undefined;
    for (const node of this.nodes) {
      if (
        node.role !== 'replica' ||
        node === exclude ||
        this.failedCheck(node, scope, false) !== undefined
      )
        continue;
      if (
        !best ||
        (node.health.lagMs ?? Number.POSITIVE_INFINITY) <
          (best.health.lagMs ?? Number.POSITIVE_INFINITY)
      ) {
        best = node;
      }
    }
    return best?.breaker.tryAcquire() ? best : undefined;
  }

  private failedCheck(
    node: ClusterNode,
    scope: RouteScope | undefined,
    includeLag: boolean,
  ): { why: string; kind: ReadCheckKind } | undefined {
    for (const { check, kind } of this.checks) {
      if (kind === 'lag' && !includeLag) continue;
      const why = check(node, scope);
      if (why !== undefined) return { why, kind };
    }
    return undefined;
  }
}
