import type { ConsistencyGuard } from '../consistency/index.js';
import type { RouteScope } from '../context/index.js';
import {
  connectFailureOf,
  isDefinitiveConnectFailure,
  NodeConnectionError,
} from '../errors/index.js';
import type { FailoverCoordinator } from '../failover/index.js';
import type { HealthMonitor, NodeProber } from '../health/index.js';
import type { Monitoring } from '../monitoring/index.js';
import type {
  Classification,
  FunctionCatalog,
  Router,
  StatementListener,
} from '../routing/index.js';
import { loadParser } from '../sql/index.js';
import type { ClusterNode } from '../topology/index.js';

/** What the start-up starts and checks, built by the wiring. */
export interface ReadinessParts {
  readonly nodes: readonly ClusterNode[];
  readonly probers: ReadonlyMap<ClusterNode, NodeProber>;
  readonly router: Router;
  readonly monitor: HealthMonitor;
  readonly guard: ConsistencyGuard;
  readonly catalog: FunctionCatalog;
  readonly monitoring: Monitoring | undefined;
  readonly channel: { start(): void } | undefined;
  readonly coordinator: FailoverCoordinator | undefined;
  /** True once close() was called: nothing more is started. */
  readonly closing: () => boolean;
}

/**
 * The cluster's start-up: what statements wait for (start, settling), what `ready()` checks
 * on top (every node probed, the nodes' connect failures judged). A failed start-up or check
 * is not kept: the next statement or `ready()` tries again. It listens to statements: after
 * the first answer, reads start the replicas' probes.
 */
export class Readiness implements StatementListener {
  /** The start-up completed; statements no longer ask for it. */
  started = false;
  #starting: Promise<void> | undefined;
  #verified = false;
  #verifying: Promise<void> | undefined;
  /** The catalog's first read, started by start(); ready() waits for it, statements do not. */
  #catalogLoading: Promise<void> | undefined;
  /** The first full health round, once something asked for it (see settling()). */
  #fullRound: Promise<void> | undefined;
  /** A statement has finished: later reads start the replicas' probes (see settling()). */
  #answered = false;
  /** The first full round and the catalog's first read are done (see everyNodeProbed()). */
  #settled = false;

  constructor(private readonly parts: ReadinessParts) {}

  /** Its part of the statement observers: a statement has been answered. */
  finished(): void {
    this.#answered = true;
  }

  /** What `cluster.ready()` does once the cluster is known open (see Cluster.ready). */
  async ready(): Promise<void> {
    await this.start();
    await this.everyNodeProbed();
    if (this.#verified) return;
    this.#verifying ??= this.verifyNodes().finally(() => {
      this.#verifying = undefined;
    });
    await this.#verifying;
    this.#verified = true;
  }

  /**
   * What statements wait for (#22: a cold start opens only what its first statement needs):
   * the parser, then a probe of the primary alone when it answers as a writable primary (else
   * a full round, as before), and the pools warmed to `pool.minSize`. The replicas are probed
   * by the first full round: the first periodic tick (unref'd), a read after the first answer,
   * a write or a context that wrote (which wait for it, see settling()), or ready(). Until a
   * replica's first probe answers, reads go to the primary. The catalog's volatile functions
   * are read in the background on the primary's probe connection; until then a read that
   * names a function or a relation is not trusted on a replica nor cached
   * (`StatementPolicy.catalogKnown`), and ready() waits for them.
   */
  start(): Promise<void> {
    const { parts } = this;
    this.#starting ??= (async () => {
      // Not awaited: the coordinator matters at a promotion only, never for a statement.
      void parts.coordinator?.prepare();
      // Together: the parser compiles while the primary's probe waits for the server. A first
      // probe on a connection is not a latency sample (ProbeResult.firstOnConnection), so the
      // compile's CPU time cannot bias the balancer.
      await Promise.all([parts.monitor.startLazily(), loadParser()]);
      if (!parts.closing()) parts.monitoring?.start();
      if (!parts.closing()) parts.channel?.start();
      this.#catalogLoading = parts.catalog.firstLoad();
      await Promise.all(parts.nodes.map((n) => n.pool.warm()));
      this.started = true;
    })();
    // A failed start-up (the parser did not load, a catalog read threw) is not kept: the
    // next statement or ready() starts again instead of failing forever.
    this.#starting.catch(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  /**
   * What start() did before the lazy start: the first full health round (every node probed)
   * and the catalog's first read; started at most once.
   */
  everyNodeProbed(): Promise<void> {
    this.#fullRound ??= Promise.all([this.parts.monitor.firstRound(), this.#catalogLoading]).then(
      () => {
        this.#settled = true;
      },
    );
    return this.#fullRound;
  }

  /**
   * What a statement waits for before it is placed, while no full health round has completed
   * (a lazy cold start): a read of a context that has not written goes at once (to the
   * primary: no replica is probed yet), and after the first answer it starts the replicas'
   * probes without waiting for them. Anything else (a write, BEGIN, a session statement, a
   * read of a context that wrote or holds a token, a read that asked for a replica) waits for
   * the full round, so that the split-brain and promotion checks of a round have seen every
   * node before a write goes out and a token's position is judged against every node, as
   * before the lazy start.
   */
  settling(cls: Classification, scope: RouteScope | undefined): Promise<void> | undefined {
    if (this.#settled) return undefined;
    // A read that asked for a replica (`cluster.replica()`, an eventual or lag-bounded scope,
    // a replica hint) waits for the round that can find one, as it did before.
    const wantsReplica =
      scope?.consistency === 'eventual' ||
      scope?.maxLagMs !== undefined ||
      cls.reason === 'hint-replica';
    if (cls.kind === 'read' && !wantsReplica && !this.parts.guard.hasWrites(scope)) {
      if (this.#answered) void this.everyNodeProbed();
      return undefined;
    }
    return this.everyNodeProbed();
  }

  /**
   * Judges the first probe of every node. A definitive failure (28P01, 28000, 3D000, a name
   * that does not resolve) fails on any node; on the primary a refused connection fails too,
   * and any other probe failure (a timeout, which a loaded machine can cause) is settled by a
   * real connect through its pool, bounded by the pool's own connect and acquire timeouts.
   */
  private async verifyNodes(): Promise<void> {
    const { nodes, probers, router } = this.parts;
    const primary = router.primary() ?? nodes[0];
    const failures: NodeConnectionError[] = [];
    await Promise.all(
      nodes.map(async (node) => {
        const error = probers.get(node)?.lastFailure;
        if (error === undefined) return;
        const failure = connectFailureOf(error);
        if (isDefinitiveConnectFailure(failure)) {
          failures.push(new NodeConnectionError(node.config, error));
          return;
        }
        if (node !== primary) return;
        if (failure === 'refused') {
          failures.push(new NodeConnectionError(node.config, error));
          return;
        }
        try {
          const connection = await node.pool.acquire();
          connection.release();
        } catch (err) {
          failures.push(
            err instanceof NodeConnectionError ? err : new NodeConnectionError(node.config, err),
          );
        }
      }),
    );
    const first = failures.find((f) => f.node.role === 'primary') ?? failures[0];
    if (first) throw first;
  }
}
