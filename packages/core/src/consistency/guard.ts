import type { ConsistencyLevel, ResolvedConsistencyConfig } from '../config/index.js';
import { type ConsistencySession, newSession, type RouteScope } from '../context/index.js';
import { PgPulseError } from '../errors/index.js';
import { formatLsn, type HealthMonitor, type Lsn, parseLsn } from '../health/index.js';
import type { ClusterNode } from '../topology/index.js';

const TOKEN_PREFIX = 'pgpulse-lsn:';

/**
 * Read-your-writes and monotonic reads (invariant 3), decided per replica from what the
 * health probes saw, with no extra round trip on the write path.
 *
 * After a write finishes at time t, any probe of the primary sent after t returns a WAL
 * position at or past that write's commit; once such a probe exists, it is the context's
 * token, and a replica serves the context only when its own probed replay position has
 * reached it. Until then the context reads from the primary (or waits, with `waitMs`).
 */
export class ConsistencyGuard {
  /** Statements made outside any scope share one session: safe, but any write holds all. */
  readonly globalSession: ConsistencySession = newSession(false);

  constructor(
    private readonly config: ResolvedConsistencyConfig,
    private readonly monitor: HealthMonitor,
    private readonly nodes: readonly ClusterNode[],
  ) {}

  level(scope: RouteScope | undefined): ConsistencyLevel {
    return scope?.consistency ?? this.config.level;
  }

  session(scope: RouteScope | undefined): ConsistencySession {
    return scope?.session ?? this.globalSession;
  }

  /** Why this replica may not serve this scope's read, or undefined when it may. */
  check = (node: ClusterNode, scope: RouteScope | undefined): string | undefined => {
    if (this.level(scope) !== 'read-your-writes') return undefined;
    const session = this.session(scope);
    const now = performance.now();
    if (this.config.mode === 'time-window') {
      const at = session.lastWriteAt;
      return at !== undefined && now - at < this.config.windowMs
        ? 'inside the read-your-writes window'
        : undefined;
    }
    this.resolve(session);
    if (session.pendingWriteAt !== undefined)
      return "this context's last write position is not known yet";
    const replay = node.health.lastProbe?.replayLsn;
    if (session.lsn !== undefined && (replay === undefined || replay < session.lsn)) {
      return "has not replayed this context's writes";
    }
    const last = session.lastRead;
    if (session.monotonic && last && last.node !== node.name) {
      const floor = this.positionSeenBy(last.node, last.at);
      if (floor === undefined) return "cannot prove it is not behind this context's last read";
      if (replay === undefined || replay < floor) return "is behind this context's last read";
    }
    return undefined;
  };

  /** Called when a statement finished on a node (successfully or not). */
  executed(node: ClusterNode, isWrite: boolean, scope: RouteScope | undefined): void {
    const session = this.session(scope);
    const now = performance.now();
    if (isWrite && node.role === 'primary') {
      // A failed write may still have committed (the answer was lost), so count it too.
      session.pendingWriteAt = now;
      session.lastWriteAt = now;
    } else if (!isWrite && session.monotonic) {
      session.lastRead = { node: node.name, at: now };
    }
  }

  /**
   * True when this scope wrote something that some reachable replica has not provably replayed
   * (or, in time-window mode, wrote within the window), or reads at 'strong': a read for it
   * cannot go just anywhere.
   */
  hasUnreplicatedWrites(scope: RouteScope | undefined): boolean {
    const level = this.level(scope);
    // A strong read must not be merged into a read that another scope may send to a replica.
    if (level === 'strong') return true;
    if (level !== 'read-your-writes') return false;
    const session = this.session(scope);
    if (this.config.mode === 'time-window') {
      const at = session.lastWriteAt;
      return at !== undefined && performance.now() - at < this.config.windowMs;
    }
    this.resolve(session);
    if (session.pendingWriteAt !== undefined) return true;
    const lsn = session.lsn;
    if (lsn === undefined) return false;
    return this.nodes.some(
      (n) => n.role === 'replica' && n.health.up && (n.health.lastProbe?.replayLsn ?? -1n) < lsn,
    );
  }

  /** True when this session has something a replica would have to prove it has seen. */
  hasWrites(scope: RouteScope | undefined): boolean {
    const session = this.session(scope);
    return session.pendingWriteAt !== undefined || session.lsn !== undefined;
  }

  /**
   * The token for this scope's writes, to carry across requests or jobs. Resolving it may need
   * one query of the primary's position (`readPrimaryLsn`) when no probe has bounded it yet.
   */
  async token(scope: RouteScope | undefined, readPrimaryLsn: () => Promise<Lsn>): Promise<string> {
    const session = this.session(scope);
    this.resolve(session);
    if (session.pendingWriteAt !== undefined) {
      session.lsn = max(session.lsn, await readPrimaryLsn());
      session.pendingWriteAt = undefined;
    }
    return session.lsn === undefined ? '' : `${TOKEN_PREFIX}${formatLsn(session.lsn)}`;
  }

  /** A session that starts from an imported token. */
  sessionFromToken(token: string): ConsistencySession {
    const session = newSession();
    if (token === '') return session;
    const lsn = token.startsWith(TOKEN_PREFIX)
      ? parseLsn(token.slice(TOKEN_PREFIX.length))
      : undefined;
    if (lsn === undefined) {
      throw new PgPulseError(
        'PGPULSE_BAD_TOKEN',
        `Not a pgpulse consistency token: expected "${TOKEN_PREFIX}<X/Y>" as returned by cluster.consistencyToken(), or "".`,
      );
    }
    session.lsn = lsn;
    return session;
  }

  private resolve(session: ConsistencySession): void {
    const pending = session.pendingWriteAt;
    if (pending === undefined) return;
    const bound = this.monitor.primaryLsnSince(pending);
    if (bound === undefined) return;
    session.lsn = max(session.lsn, bound);
    session.pendingWriteAt = undefined;
  }

  /** An upper bound of what a read on `nodeName` at time `at` could have seen. */
  private positionSeenBy(nodeName: string, at: number): Lsn | undefined {
    const node = this.nodes.find((n) => n.name === nodeName);
    const probe = node?.health.lastProbe;
    // A replica probe sent after the read saw at least as much as the read did.
    if (node?.role === 'replica' && probe && probe.sentAt >= at && probe.replayLsn !== undefined) {
      return probe.replayLsn;
    }
    return this.monitor.primaryLsnSince(at);
  }
}

function max(a: Lsn | undefined, b: Lsn): Lsn {
  return a === undefined || b > a ? b : a;
}
