import type { Cluster, InScope } from '@pgpulse/core';

/**
 * A background job reads what the request that queued it wrote. At enqueue time, inside the
 * request: `queue.add({ ...payload, pgpulseToken: await jobToken(cluster) })`; in the worker:
 * `await runJob(cluster, job.data.pgpulseToken, () => handle(job))`.
 */
export function jobToken(cluster: Cluster): Promise<string> {
  return cluster.consistencyToken();
}

/**
 * Runs a job as its own context that has seen the writes behind `token` (from `jobToken`); an
 * empty, missing or malformed token gives a fresh context.
 */
export function runJob<T>(cluster: Cluster, token: string | undefined, fn: () => T): InScope<T> {
  return cluster.requestContext(token, fn, 'job');
}
