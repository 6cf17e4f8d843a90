/**
 * Errors of reaching a node: its pool's timeouts (a full pool, a silent node), a closed pool,
 * and a health probe that got no answer.
 */
import { describeNode, type NodeLabel } from './node-label.js';
import { PgPulseError } from './pgpulse-error.js';

/** A node pool's counts when an error was raised. */
export interface PoolFigures {
  readonly total: number;
  readonly idle: number;
  readonly inUse: number;
  readonly waiting: number;
  readonly max: number;
}

/** A connection could not be acquired from a node's pool within `pool.acquireTimeoutMs`. */
export class PoolTimeoutError extends PgPulseError {
  readonly node: NodeLabel;
  readonly figures: PoolFigures;
  readonly timeoutMs: number;

  constructor(node: NodeLabel, figures: PoolFigures, timeoutMs: number) {
    super(
      'PGPULSE_POOL_TIMEOUT',
      `Timed out after ${timeoutMs} ms acquiring a connection to ${describeNode(node)}: ` +
        `${figures.inUse} in use of ${figures.max} (maxSize + overflow), ${figures.idle} idle, ` +
        `${figures.waiting} waiting. Raise pool.maxSize / pool.overflow or pool.acquireTimeoutMs, ` +
        'or look for connections that are not released.',
      { retriable: true },
    );
    this.node = node;
    this.figures = figures;
    this.timeoutMs = timeoutMs;
  }
}

/** Where a connect timed out: opening the connection or the pre-ping of an idle one. */
export type ConnectTimeoutPhase = 'connect' | 'pre-ping';

/**
 * The node itself did not answer in time: a connection opened for this acquire (or the pre-ping
 * of an idle one) was still without a reply when the acquire deadline came. Unlike
 * PoolTimeoutError, which means this process ran out of connections, this says the node is
 * unreachable or stalled, so it counts toward the node's circuit breaker.
 */
export class ConnectTimeoutError extends PgPulseError {
  readonly node: NodeLabel;
  readonly phase: ConnectTimeoutPhase;
  /** How long the node had been silent when the acquire gave up. */
  readonly elapsedMs: number;

  constructor(node: NodeLabel, phase: ConnectTimeoutPhase, elapsedMs: number) {
    const what =
      phase === 'connect'
        ? 'did not complete a new connection (TCP connect and start-up handshake)'
        : 'did not answer the pre-ping of an idle connection';
    const ms = Math.round(elapsedMs);
    super(
      'PGPULSE_CONNECT_TIMEOUT',
      `${capitalize(describeNode(node))} ${what} within ${ms} ms (${phase} timeout). Check ` +
        'that the node is up and reachable, or raise pool.acquireTimeoutMs / ' +
        'pool.connectTimeoutMs for a slow link.',
      {
        retriable: true,
        // isAvailabilityError reads codes along the cause chain; ETIMEDOUT is what the OS itself
        // reports for a connect that gets no answer, so the breaker treats both alike.
        cause: Object.assign(new Error(`connect ETIMEDOUT ${node.host}:${node.port}`), {
          code: 'ETIMEDOUT',
          syscall: 'connect',
          address: node.host,
          port: node.port,
        }),
      },
    );
    this.node = node;
    this.phase = phase;
    this.elapsedMs = elapsedMs;
  }
}

/** acquire() on a pool that end() has closed, or a wait cut short by end(). */
export class PoolClosedError extends PgPulseError {
  readonly node: NodeLabel;

  constructor(node: NodeLabel) {
    super(
      'PGPULSE_POOL_CLOSED',
      `The connection pool for ${describeNode(node)} is ending or has ended; no more ` +
        'connections are handed out from it.',
    );
    this.node = node;
  }
}

/**
 * A health probe (or one of pgpulse's own statements on the probe connection) got no answer in
 * time. Retriable; like a connect that gets no answer, it counts as the node being unreachable
 * (its cause carries ETIMEDOUT, which the availability checks read along the cause chain).
 */
export class ProbeTimeoutError extends PgPulseError {
  readonly node: string;
  readonly timeoutMs: number;

  constructor(node: string, timeoutMs: number) {
    super(
      'PGPULSE_PROBE_TIMEOUT',
      `health probe of "${node}" got no answer within ${timeoutMs} ms (probe timeout). Check ` +
        'that the node is up and reachable, or raise health.timeoutMs for a slow link.',
      {
        retriable: true,
        cause: Object.assign(new Error(`probe of ${node} timed out`), { code: 'ETIMEDOUT' }),
      },
    );
    this.node = node;
    this.timeoutMs = timeoutMs;
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
