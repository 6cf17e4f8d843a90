import type { SlowQueries } from '../analysis/index.js';
import type { ResultCache } from '../cache/index.js';
import { ConfigError } from '../errors/index.js';
import type { FailoverCoordinator } from '../failover/index.js';
import type { HealthMonitor } from '../health/index.js';
import type { Monitoring } from '../monitoring/index.js';
import type { FunctionCatalog, RoutingPool } from '../routing/index.js';
import type { ClusterNode } from '../topology/index.js';
import { DEFAULT_CLOSE_TIMEOUT_MS } from './types.js';

/** What close() stops, drains and ends, built by the wiring. */
export interface ClosingParts {
  readonly pool: RoutingPool;
  readonly nodes: readonly ClusterNode[];
  readonly catalog: FunctionCatalog;
  readonly monitor: HealthMonitor;
  readonly monitoring: Monitoring | undefined;
  readonly results: ResultCache | undefined;
  readonly slow: SlowQueries;
  readonly channel: { close(): Promise<void> } | undefined;
  readonly coordinator: FailoverCoordinator | undefined;
}

/** The close timeout asked for, checked: a ConfigError names `close.timeoutMs` when it is not one. */
export function closeTimeoutMs(asked: number | undefined): number {
  const timeoutMs = asked ?? DEFAULT_CLOSE_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
    throw new ConfigError([
      {
        field: 'close.timeoutMs',
        message: `must be a number of milliseconds >= 0 (got ${String(timeoutMs)})`,
      },
    ]);
  }
  return timeoutMs;
}

/**
 * Closes everything (see Cluster.close): new work refused at once, the timers stopped, the
 * statements in flight given up to `timeoutMs`, then every connection cut.
 */
export async function closeParts(parts: ClosingParts, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  parts.pool.shutDown();
  parts.catalog.stop();
  parts.monitor.stop();
  parts.monitoring?.stop();
  parts.results?.clear();
  const quiet = await parts.pool.quiet(timeoutMs);
  const ended = Promise.all([parts.slow.close(), ...parts.nodes.map((n) => n.pool.end())]);
  if (!quiet || !(await settlesWithin(ended, deadline - performance.now()))) {
    parts.pool.expire();
    await Promise.all(parts.nodes.map((n) => n.pool.terminate()));
  }
  await ended;
  // After the statements that may still finish: their writes are still told to the others.
  await parts.channel?.close();
  await parts.coordinator?.close().catch(() => {});
}

/** True when `work` settles within `ms`; the timer keeps the process up meanwhile. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  if (ms <= 0) return false;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
