import { describeNode, type NodeLabel, PgPulseError } from '../errors/index.js';

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

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
