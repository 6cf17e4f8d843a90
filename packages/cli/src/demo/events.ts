/** pgpulse's cluster events, as lines of the live view. */
import type { Cluster } from '@pgpulse/core';

export type Log = (kind: string, text: string) => void;

export function logClusterEvents(cluster: Cluster, log: Log, maxLagMs: number | null): void {
  const limit = maxLagMs === null ? '' : ` (limit ${maxLagMs} ms)`;
  cluster.on('node-down', (e) =>
    log('node-down', `${e.node} (${e.role}) failed its health probes: ${e.error}`),
  );
  cluster.on('node-up', (e) => log('node-up', `${e.node} (${e.role}) answers again`));
  cluster.on('breaker', (e) => log('breaker', `${e.node}: circuit breaker ${e.from} → ${e.to}`));
  cluster.on('lag', (e) =>
    log(
      'lag',
      e.over
        ? `${e.node} is ${ms(e.lagMs)} behind${limit}: its reads move to other nodes`
        : `${e.node} caught up (${ms(e.lagMs)}): back in rotation`,
    ),
  );
  cluster.on('failover-started', (e) =>
    log('failover', `primary lost (${e.reason}); last known WAL position ${e.lastKnownLsn ?? '?'}`),
  );
  cluster.on('failover-completed', (e) =>
    log(
      'failover',
      `${e.to} is the new primary (promoted by ${e.promotedBy}, timeline ${e.timeline ?? '?'}` +
        `${e.durationMs !== undefined ? `, ${Math.round(e.durationMs)} ms after detection` : ''})`,
    ),
  );
  cluster.on('failover-failed', (e) => log('error', `failover failed: ${e.error.message}`));
  // Idle pooled connections to a killed node error out; pgpulse handles them already.
  cluster.on('connection-error', () => {});
}

function ms(value: number | undefined): string {
  return value === undefined ? '? ms' : `${Math.round(value)} ms`;
}
