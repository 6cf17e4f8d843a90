import type { ConsistencyLevel, ResolvedConsistencyConfig } from '../config/index.js';
import { type ConsistencySession, newSession, type RouteScope } from '../context/index.js';
import type { HealthMonitor, Lsn } from '../health/index.js';
import type { StatementEvent, StatementListener } from '../routing/index.js';
import type { ClusterNode } from '../topology/index.js';
import { decodeToken, encodeToken, type TokenPositions } from './token.js';

/** Stands for "the primary's position at import" until the first probe after it caps it. */
const UNBOUNDED: Lsn = 0xffffffffffffffffn;

/**
 * Read-your-writes and monotonic reads (invariant 3), decided per replica from what the
 * health probes saw, with no extra round trip on the write path.
 *
 * After a write finishes at time t, any probe of the primary sent after t returns a WAL
 * position at or past that write's commit; once such a probe exists, it is the context's
 * token, and a replica serves the context only when its own probed replay position has
 * reached it. Until then the context reads from the primary (or waits, with `waitMs`); such a
 * read asks for an on-demand position check (`health.positionCheckMs`) rather than leave it to
 * the next probe round, which matters most for unscoped statements: they share one session, so
 * any unscoped write holds every unscoped read.
 */
export class ConsistencyGuard implements StatementListener {
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
    if (session.seen !== undefined && (replay === undefined || replay < session.seen)) {
      return 'is behind what this context has already read';
    }
    const last = session.lastRead;
    if (session.monotonic && last && last.node !== node.name) {
      const floor = this.positionSeenBy(last.node, last.at);
      if (floor === undefined) return "cannot prove it is not behind this context's last read";
      if (replay === undefined || replay < floor) return "is behind this context's last read";
    }
    return undefined;
  };

  /** Its part of the statement observers: records where the statement ran and whether it wrote. */
  finished(event: StatementEvent): void {
    this.executed(event.node, event.cls.kind === 'write', event.scope);
  }

  /**
   * The WAL position a cache entry must be at for this scope (read-your-writes): its session's
   * token, or 'unknown' while a write's position is not bounded yet (then no entry serves it).
   */
  requiredPosition(scope: RouteScope | undefined): Lsn | 'unknown' | undefined {
    if (this.level(scope) !== 'read-your-writes') return undefined;
    const session = this.session(scope);
    if (this.config.mode === 'time-window') {
      const at = session.lastWriteAt;
      return at !== undefined && performance.now() - at < this.config.windowMs
        ? 'unknown'
        : undefined;
    }
    let lsn = session.lsn;
    if (session.pendingWriteAt !== undefined) {
      const bound = this.monitor.primaryLsnSince(session.pendingWriteAt);
      if (bound === undefined) return 'unknown';
      if (lsn === undefined || bound > lsn) lsn = bound;
    }
    return lsn;
  }

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
    const lsn = max(session.lsn, session.seen);
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
   * The token for this scope: what it wrote and the highest position it read at, to carry
   * across requests, jobs or processes. It never fails: a position the probes have not bounded
   * yet is asked of the primary once (`readPrimaryLsn`, which the caller bounds in time) and,
   * when that fails (the primary is crashing), exported as "the primary's position at import",
   * an upper bound the importer resolves from its own probes.
   */
  async token(
    scope: RouteScope | undefined,
    readPrimaryLsn: () => Promise<Lsn | undefined>,
  ): Promise<string> {
    const session = this.session(scope);
    this.resolve(session);
    let primaryNow: Lsn | undefined;
    let asked = false;
    const askPrimary = async () => {
      if (!asked) {
        asked = true;
        primaryNow = await readPrimaryLsn().catch(() => undefined);
      }
      return primaryNow;
    };
    let written: TokenPositions['written'] = session.lsn;
    if (session.pendingWriteAt !== undefined) {
      const now = await askPrimary();
      // The ask may have taken a probe round: a probe may have bounded the write meanwhile.
      this.resolve(session);
      if (session.pendingWriteAt === undefined) written = session.lsn;
      else if (now !== undefined) {
        session.lsn = max(session.lsn, now);
        session.pendingWriteAt = undefined;
        written = session.lsn;
      } else written = 'primary';
    }
    let seen: TokenPositions['seen'] = session.seen;
    const last = session.lastRead;
    if (session.monotonic && last) {
      const floor = this.positionSeenBy(last.node, last.at) ?? (await askPrimary());
      seen = floor === undefined ? 'primary' : max(session.seen, floor);
    }
    return encodeToken({ written: wide(written), seen: wide(seen) });
  }

  /**
   * A session that starts from an imported token. Throws BadTokenError for a malformed one.
   * Its positions are capped at the primary's once a probe after now bounds it.
   */
  sessionFromToken(token: string): ConsistencySession {
    const session = newSession();
    const { written, seen } = decodeToken(token);
    if (written === undefined && seen === undefined) return session;
    session.lsn = written === 'primary' ? UNBOUNDED : written;
    session.seen = seen === 'primary' ? UNBOUNDED : seen;
    session.capSince = performance.now();
    this.resolve(session);
    return session;
  }

  private resolve(session: ConsistencySession): void {
    if (session.capSince !== undefined) {
      // Whatever the token's writer wrote or read was on the primary before the import.
      const cap = this.monitor.primaryLsnSince(session.capSince);
      if (cap !== undefined) {
        session.lsn = min(session.lsn, cap);
        session.seen = min(session.seen, cap);
        session.capSince = undefined;
      }
    }
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

function max(a: Lsn | undefined, b: Lsn): Lsn;
function max(a: Lsn | undefined, b: Lsn | undefined): Lsn | undefined;
function max(a: Lsn | undefined, b: Lsn | undefined): Lsn | undefined {
  if (a === undefined) return b;
  return b === undefined || a > b ? a : b;
}

function min(a: Lsn | undefined, b: Lsn): Lsn | undefined {
  return a === undefined || a < b ? a : b;
}

/** A position not capped yet is still "the primary's at import" for the next importer. */
function wide<T extends Lsn | 'primary' | undefined>(value: T): T | 'primary' {
  return value === UNBOUNDED ? 'primary' : value;
}
