// Consistency tokens at the edges: what a context wrote AND what it has seen survives export and
// import (monotonic reads across requests), malformed tokens are typed errors (and harmless in
// the middleware), tokens from the future are capped, and export works while the primary dies.
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadTokenError, type Cluster, createCluster } from '../packages/core/src/index.js';

async function poll(what: string, fn: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Names of the nodes whose statement counter moved while `fn` ran. */
async function servedBy<T>(cluster: Cluster, fn: () => Promise<T>): Promise<[string[], T]> {
  const before = new Map(cluster.stats().nodes.map((n) => [n.name, n.counters.queries]));
  const value = await fn();
  const names = cluster
    .stats()
    .nodes.filter((n) => n.counters.queries > (before.get(n.name) ?? 0))
    .map((n) => n.name);
  return [names, value];
}

describe('consistency tokens', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query(
      'primary',
      `CREATE TABLE kv (k int PRIMARY KEY, v int); INSERT INTO kv VALUES (1, 0);
       CREATE TABLE audit (id serial PRIMARY KEY, note text);`,
    );
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 100 },
      // Paused replicas stay in rotation: only consistency may keep a read off them.
      replicaLag: { maxLagMs: null, maxLagBytes: null },
    });
    await cluster.ready();
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  const readV = async () =>
    (await cluster.pool.query<{ v: number }>('SELECT v FROM kv WHERE k = 1')).rows[0]!.v;

  it('monotonic reads hold across an exported token, with a replica that has the writes but not what was seen', async () => {
    const token = await cluster.context(async () => {
      await cluster.pool.query("INSERT INTO audit (note) VALUES ('a')");
      // Both replicas replay the context's own write...
      await poll('both replicas to replay the write', async () => !cluster.hasUnreplicatedWrites());
      // ...then replica2 stops, and a newer value reaches only replica1 (and the primary).
      await sandbox.pauseReplay('replica2');
      await sandbox.query('primary', 'UPDATE kv SET v = 1 WHERE k = 1');
      await poll('replica1 to replay v = 1', async () => {
        const rows = await sandbox.query<{ v: number }>('replica1', 'SELECT v FROM kv WHERE k = 1');
        return rows[0]?.v === 1;
      });
      await poll('this context to read v = 1', async () => (await readV()) === 1);
      return cluster.consistencyToken();
    });
    try {
      expect(token).toMatch(/^pgpulse:2:[0-9A-F]+\/[0-9A-F]+:[0-9A-F]+\/[0-9A-F]+$/);
      let replica2Reads = 0;
      for (let i = 0; i < 20; i++) {
        const [names, v] = await cluster.withConsistencyToken(token, () =>
          servedBy(cluster, readV),
        );
        expect(v).toBe(1); // never older than what the exporting context already read
        if (names.includes('replica-2')) replica2Reads++;
      }
      expect(replica2Reads).toBe(0);
      // The token of a context that only wrote still carries no "seen" it does not have.
      const written = await cluster.context(async () => {
        await cluster.pool.query("INSERT INTO audit (note) VALUES ('b')");
        return cluster.consistencyToken();
      });
      expect(written).toMatch(/^pgpulse:2:[0-9A-F]+\/[0-9A-F]+:-$/);
    } finally {
      await sandbox.resumeReplay('replica2');
    }
  });

  it('a version-1 token (written position only) is still accepted', async () => {
    const v2 = await cluster.context(async () => {
      await cluster.pool.query("INSERT INTO audit (note) VALUES ('c')");
      return cluster.consistencyToken();
    });
    const written = v2.split(':')[2]!;
    const v1 = `pgpulse-lsn:${written}`;
    expect(cluster.withConsistencyToken(v1, () => cluster.hasUnreplicatedWrites())).toBeTypeOf(
      'boolean',
    );
    const [, v] = await cluster.withConsistencyToken(v1, () => servedBy(cluster, readV));
    expect(typeof v).toBe('number');
  });

  it('a malformed token is a typed PGPULSE_BAD_TOKEN error from withConsistencyToken', () => {
    for (const bad of ['pgpulse-lsn:0/84C768x', 'pgpulse:9:0/1:0/1', 'garbage']) {
      let caught: unknown;
      try {
        cluster.withConsistencyToken(bad, () => 1);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(BadTokenError);
      expect((caught as BadTokenError).code).toBe('PGPULSE_BAD_TOKEN');
    }
  });

  it('the middleware treats a bad header as absent, with a bad-token event, and runs the request', async () => {
    const events: { header: string; reason: string }[] = [];
    cluster.on('bad-token', (e) => events.push(e));
    const middleware = cluster.middleware({ header: 'X-Token' });
    const ran = await new Promise<string>((resolve, reject) => {
      try {
        middleware({ headers: { 'x-token': 'pgpulse-lsn:0/84C768x' } }, {}, () => {
          void cluster.consistencyToken().then(resolve, reject);
        });
      } catch (err) {
        reject(err);
      }
    });
    expect(ran).toBe(''); // a fresh context: nothing written, nothing seen
    expect(events).toHaveLength(1);
    expect(events[0]!.header).toBe('x-token');
    expect(events[0]!.reason).not.toContain('84C768x'); // the bad value is not echoed
    cluster.removeAllListeners('bad-token');
  });

  it('a token ahead of the primary is capped at it: reads go back to replicas', async () => {
    await sandbox.waitForReplay();
    await cluster.withConsistencyToken('pgpulse-lsn:FFFFFFFF/FFFFFFFF', async () => {
      // Before a probe bounds it, reads are served (by the primary), never refused.
      expect(typeof (await readV())).toBe('number');
      await poll('a read of the capped context on a replica', async () => {
        const [names] = await servedBy(cluster, readV);
        return names.some((n) => n.startsWith('replica'));
      });
    });
    await cluster.withConsistencyToken('pgpulse:2:FFFFFFFF/FFFFFFFF:*', async () => {
      await poll('a read of the capped context on a replica', async () => {
        const [names] = await servedBy(cluster, readV);
        return names.some((n) => n.startsWith('replica'));
      });
    });
  });
});

describe('exporting a token while the primary dies', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query('primary', 'CREATE TABLE audit (id serial PRIMARY KEY, note text)');
    await sandbox.waitForReplay();
    await sandbox.pauseReplay('replica1');
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: [sandbox.replicas[0]!.url],
      // No probe after ready(): the write's position stays unknown to pgpulse.
      health: { intervalMs: 600_000, timeoutMs: 500 },
      replicaLag: { maxLagMs: null, maxLagBytes: null },
    });
    await cluster.ready();
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  it('does not fail: the token says "the primary position at import", which keeps the importer off the lagging replica', async () => {
    const token = await cluster.context(async () => {
      await cluster.pool.query("INSERT INTO audit (note) VALUES ('x')");
      await sandbox.kill('primary');
      return cluster.consistencyToken();
    });
    expect(token).toBe('pgpulse:2:*:-');
    expect(cluster.withConsistencyToken(token, () => cluster.hasUnreplicatedWrites())).toBe(true);
    // The importer's read is refused rather than served stale by the replica.
    const replicaBefore = cluster.stats().nodes.find((n) => n.name === 'replica-1')!
      .counters.queries;
    await expect(
      cluster.withConsistencyToken(token, () => cluster.pool.query('SELECT count(*) FROM audit')),
    ).rejects.toThrow();
    expect(cluster.stats().nodes.find((n) => n.name === 'replica-1')!.counters.queries).toBe(
      replicaBefore,
    );
  });
});
