import { type Cluster, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A libpq multi-host URL as the whole cluster definition, with the standby listed first: the
// probes, not the order, decide which node takes writes.
describe('a multi-host URL as the cluster', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    const standby = new URL(sandbox.replicas[0]!.url);
    const primary = new URL(sandbox.primary.url);
    const url = `postgres://${standby.username}:${standby.password}@${standby.host},${primary.host}/postgres?target_session_attrs=any`;
    cluster = createCluster({ primary: url, health: { intervalMs: 100 } });
    await cluster.ready();
  });

  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  it('writes reach the writable node and plain reads the standby, whatever the order', async () => {
    await cluster.pool.query('CREATE TABLE hosts_t (id int)');
    const write = await cluster.pool.query<{ port: number }>(
      'INSERT INTO hosts_t VALUES (1) RETURNING inet_server_port() AS port',
    );
    expect(write.rows[0]!.port).toBe(sandbox.primary.port);
    await sandbox.waitForReplay();
    // A fresh context (it wrote nothing) reads from the standby.
    const read = await cluster.context(() =>
      cluster.pool.query<{ port: number; standby: boolean }>(
        'SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby',
      ),
    );
    expect(read.rows[0]).toEqual({ port: sandbox.replicas[0]!.port, standby: true });
  });
});
