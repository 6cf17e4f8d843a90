import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterClosedError, createCluster } from '../packages/core/src/index.js';

let sandbox: SandboxCluster;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
}, 60_000);

afterAll(async () => {
  await sandbox?.stop();
});

describe('after close() (#11 item 1, in part)', () => {
  it('ready(), acquire(), analyzeQuery() and pool.query() reject with ClusterClosedError', async () => {
    const c = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
    });
    await c.ready();
    await c.close();
    await expect(c.ready()).rejects.toBeInstanceOf(ClusterClosedError);
    await expect(c.acquire()).rejects.toBeInstanceOf(ClusterClosedError);
    await expect(c.analyzeQuery('SELECT 1')).rejects.toBeInstanceOf(ClusterClosedError);
    await expect(c.pool.query('SELECT 1')).rejects.toBeInstanceOf(ClusterClosedError);
  }, 30_000);
});
