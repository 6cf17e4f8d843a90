// cluster.pool.scoped(): a pool view whose statements run in a fixed scope, for code that takes
// a pool rather than a function (TypeORM's master connection, drizzle's $primary / $replica).
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

const IN_RECOVERY = 'SELECT pg_is_in_recovery() AS standby';
const standby = async (pool: pg.Pool | pg.PoolClient) =>
  ((await pool.query(IN_RECOVERY)).rows[0] as { standby: boolean }).standby;

describe('cluster.pool.scoped()', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    cluster = createCluster({ primary: sandbox.primary.url, replicas: [sandbox.replicas[0]!.url] });
    await cluster.ready();
    await sandbox.query('primary', 'CREATE TABLE scoped_t (id int)');
    await sandbox.waitForReplay();
  });
  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  it("runs the view's reads on the primary and leaves the pool's own reads on the replica", async () => {
    const primary = cluster.pool.scoped({ target: 'primary' });
    expect(primary).toBeInstanceOf(pg.Pool);
    expect(await standby(primary)).toBe(false);
    expect(await standby(cluster.pool)).toBe(true);
    // Everything but query and connect is the pool's own.
    expect(primary.totalCount).toBe(cluster.pool.totalCount);
  });

  it('keeps the scope on a checked-out client until it is released, then not on its next checkout', async () => {
    const primary = cluster.pool.scoped({ target: 'primary' });
    const client = await primary.connect();
    expect(await standby(client)).toBe(false);
    expect(await standby(client)).toBe(false);
    client.release();
    const plain = await cluster.pool.connect();
    try {
      expect(await standby(plain)).toBe(true);
    } finally {
      plain.release();
    }
  });

  it('also with the callback form of connect()', async () => {
    const primary = cluster.pool.scoped({ target: 'primary' });
    const answer = await new Promise<boolean>((resolve, reject) => {
      primary.connect((err, client, done) => {
        if (err || !client) return reject(err);
        standby(client).then(
          (value) => {
            done();
            resolve(value);
          },
          (e: unknown) => {
            done();
            reject(e);
          },
        );
      });
    });
    expect(answer).toBe(false);
  });

  it("a scope the view leaves out comes from the enclosing one: cluster.primary() around a replica view's statement", async () => {
    const strong = cluster.pool.scoped({ consistency: 'strong' });
    expect(await standby(strong)).toBe(false);
    const eventual = cluster.pool.scoped({ target: 'replica' });
    expect(await standby(eventual)).toBe(true);
  });

  it("a 'replica' view keeps its maxLagMs: a replica further behind does not serve it", async () => {
    await sandbox.pauseReplay(sandbox.replicas[0]!.name);
    try {
      await waitUntil(async () => {
        await sandbox.query('primary', 'INSERT INTO scoped_t VALUES (2)');
        const replica = cluster.stats().nodes.find((n) => n.role === 'replica');
        return (replica?.lagMs ?? 0) > 50;
      });
      expect(await standby(cluster.pool.scoped({ target: 'replica' }))).toBe(true);
      expect(await standby(cluster.pool.scoped({ target: 'replica', maxLagMs: 10 }))).toBe(false);
    } finally {
      await sandbox.resumeReplay(sandbox.replicas[0]!.name);
    }
  });

  it("a 'replica' view reads a replica right after this context's own write", async () => {
    await cluster.context(async () => {
      await cluster.pool.query('INSERT INTO scoped_t VALUES (1)');
      // The context's own read waits for its write (primary or a caught-up replica); the
      // replica view reads a replica at once whatever it has replayed.
      const replica = cluster.pool.scoped({ target: 'replica' });
      const viaFunction = await cluster.replica(() => standby(cluster.pool));
      expect(await standby(replica)).toBe(viaFunction);
      expect(await standby(replica)).toBe(true);
    });
  });
});
