import { readdirSync, readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxCluster, startCluster } from './index.js';

/** Every pid whose parent chain reaches one of `roots` (the postmasters and their backends). */
function processTree(roots: readonly number[]): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 is the parent pid; the command name in field 2 may contain spaces, so split after ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // the process exited while we looked
    }
  }
  const found = new Set(roots.filter((pid) => parents.has(pid)));
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parents) {
      if (!found.has(pid) && found.has(ppid)) {
        found.add(pid);
        grew = true;
      }
    }
  }
  return [...found];
}

async function lsn(cluster: SandboxCluster, name: string, fn: string): Promise<string> {
  const [row] = await cluster.query<{ lsn: string }>(name, `SELECT ${fn}::text AS lsn`);
  return row!.lsn;
}

async function lsnGreater(
  cluster: SandboxCluster,
  name: string,
  a: string,
  b: string,
): Promise<boolean> {
  const [row] = await cluster.query<{ gt: boolean }>(name, 'SELECT $1::pg_lsn > $2::pg_lsn AS gt', [
    a,
    b,
  ]);
  return row!.gt;
}

describe('sandbox cluster (1 primary + 2 replicas)', () => {
  let cluster: SandboxCluster;

  beforeAll(async () => {
    cluster = await startCluster({ replicas: 2 });
    await cluster.query('primary', 'CREATE TABLE items (id int PRIMARY KEY, label text)');
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('starts a primary and two streaming standbys', async () => {
    expect(cluster.primary.name).toBe('primary');
    expect(cluster.replicas.map((r) => r.name)).toEqual(['replica1', 'replica2']);
    const [p] = await cluster.query<{ r: boolean }>('primary', 'SELECT pg_is_in_recovery() AS r');
    expect(p!.r).toBe(false);
    const senders = await cluster.query<{ application_name: string; state: string }>(
      'primary',
      'SELECT application_name, state FROM pg_stat_replication ORDER BY application_name',
    );
    expect(senders.map((s) => [s.application_name, s.state])).toEqual([
      ['replica1', 'streaming'],
      ['replica2', 'streaming'],
    ]);
    for (const r of cluster.replicas) {
      const [row] = await cluster.query<{ r: boolean }>(r.name, 'SELECT pg_is_in_recovery() AS r');
      expect(row!.r).toBe(true);
    }
  });

  it('serves the url through plain pg and loads the contrib extensions', async () => {
    const client = new pg.Client({ connectionString: cluster.primary.url });
    client.on('error', () => {});
    await client.connect();
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await client.query('CREATE EXTENSION IF NOT EXISTS pgstattuple');
    const { rows } = await client.query<{ n: string }>(
      'SELECT count(*) AS n FROM pg_stat_statements',
    );
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
    await client.end();
  });

  it('replicates a row written on the primary to both replicas', async () => {
    await cluster.query('primary', "INSERT INTO items VALUES (1, 'one')");
    await cluster.waitForReplay();
    for (const r of cluster.replicas) {
      const rows = await cluster.query<{ label: string }>(
        r.name,
        'SELECT label FROM items WHERE id = 1',
      );
      expect(rows).toEqual([{ label: 'one' }]);
    }
  });

  it('pauseReplay stops a replica replay LSN while the primary advances; resumeReplay catches up', async () => {
    await cluster.pauseReplay('replica1');
    const before = await lsn(cluster, 'replica1', 'pg_last_wal_replay_lsn()');
    const primaryBefore = await lsn(cluster, 'primary', 'pg_current_wal_lsn()');
    for (let i = 2; i < 12; i++)
      await cluster.query('primary', 'INSERT INTO items VALUES ($1, $2)', [i, 'x']);
    await cluster.waitForReplay(); // replica2 only: replica1 is paused
    const primaryAfter = await lsn(cluster, 'primary', 'pg_current_wal_lsn()');
    expect(await lsnGreater(cluster, 'primary', primaryAfter, primaryBefore)).toBe(true);
    expect(await lsn(cluster, 'replica1', 'pg_last_wal_replay_lsn()')).toBe(before);
    const paused = await cluster.query<{ n: string }>(
      'replica1',
      'SELECT count(*) AS n FROM items',
    );
    expect(paused[0]!.n).toBe('1');

    await cluster.resumeReplay('replica1');
    await cluster.waitForReplay();
    const caughtUp = await cluster.query<{ n: string }>(
      'replica1',
      'SELECT count(*) AS n FROM items',
    );
    expect(caughtUp[0]!.n).toBe('11');
  });

  it('setApplyDelay holds a replica behind by the delay', async () => {
    await cluster.setApplyDelay('replica2', 800);
    await cluster.query('primary', "INSERT INTO items VALUES (100, 'delayed')");
    await new Promise((r) => setTimeout(r, 200));
    const early = await cluster.query('replica2', 'SELECT 1 FROM items WHERE id = 100');
    expect(early).toEqual([]);
    await cluster.setApplyDelay('replica2', 0);
    await cluster.waitForReplay();
    const late = await cluster.query('replica2', 'SELECT 1 FROM items WHERE id = 100');
    expect(late).toHaveLength(1);
  });

  it('proxy latency adds at least the configured delay', async () => {
    const proxy = await cluster.proxy('replica2');
    const client = new pg.Client({ connectionString: proxy.url });
    client.on('error', () => {});
    await client.connect();
    const time = async () => {
      const t0 = performance.now();
      await client.query('SELECT 1');
      return performance.now() - t0;
    };
    // The fastest of a few round trips: a loaded machine may stall any single one, but not
    // every one by the proxy's delay.
    const fastest = async () => {
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 5; i++) best = Math.min(best, await time());
      return best;
    };
    const direct = await fastest();
    proxy.latency(60);
    const slowed = await time();
    // One round trip crosses the proxy twice (request and answer): never less than that.
    expect(slowed).toBeGreaterThanOrEqual(120);
    expect(direct).toBeLessThan(60);
    proxy.heal();
    expect(await fastest()).toBeLessThan(60);
    await client.end();
  });

  it('proxy blackhole makes a connect attempt time out; heal restores it', async () => {
    const proxy = await cluster.proxy('replica1');
    proxy.blackhole();
    const t0 = performance.now();
    const client = new pg.Client({ connectionString: proxy.url, connectionTimeoutMillis: 300 });
    // A timed-out client may still report its socket's end later; that is expected here.
    client.on('error', () => {});
    await expect(client.connect()).rejects.toThrow(/timeout/i);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    proxy.heal();
    const ok = new pg.Client({ connectionString: proxy.url, connectionTimeoutMillis: 2000 });
    ok.on('error', () => {});
    await ok.connect();
    await ok.query('SELECT 1');
    await ok.end();
  });

  it('proxy reset drops open connections with a connection error', async () => {
    const proxy = await cluster.proxy('replica1');
    const client = new pg.Client({ connectionString: proxy.url });
    client.on('error', () => {});
    await client.connect();
    proxy.reset();
    await expect(client.query('SELECT 1')).rejects.toThrow();
  });
});

describe('sandbox failover controls', () => {
  it('kill(primary) leaves replicas serving; promote takes writes; follow re-points; stop leaves no process', async () => {
    const cluster = await startCluster({ replicas: 2 });
    try {
      await cluster.query('primary', 'CREATE TABLE t (id int)');
      await cluster.query('primary', 'INSERT INTO t VALUES (1)');
      await cluster.waitForReplay();

      await cluster.kill('primary');
      expect(cluster.node('primary').running).toBe(false);
      for (const r of cluster.replicas) {
        expect(await cluster.query(r.name, 'SELECT id FROM t')).toEqual([{ id: 1 }]);
      }
      await expect(cluster.query('replica1', 'INSERT INTO t VALUES (2)')).rejects.toThrow(
        /read-only/,
      );

      await cluster.promote('replica1');
      expect(cluster.primary.name).toBe('replica1');
      expect(cluster.replicas.map((r) => r.name)).toEqual(['replica2']);
      await cluster.query('replica1', 'INSERT INTO t VALUES (2)');

      await cluster.follow('replica2', 'replica1');
      await cluster.query('replica1', 'INSERT INTO t VALUES (3)');
      await cluster.waitForReplay();
      const rows = await cluster.query<{ id: number }>('replica2', 'SELECT id FROM t ORDER BY id');
      expect(rows.map((r) => r.id)).toEqual([1, 2, 3]);
      const [tl] = await cluster.query<{ tli: number }>(
        'replica2',
        'SELECT received_tli AS tli FROM pg_stat_wal_receiver',
      );
      expect(tl!.tli).toBe(2);

      // The old primary comes back on its own (writable) timeline: the sandbox calls it detached.
      await cluster.start('primary');
      expect(cluster.node('primary').role).toBe('detached');
      await cluster.query('primary', 'SELECT 1');
    } finally {
      const pids = cluster.all.flatMap((n) => (n.pid === undefined ? [] : [n.pid]));
      expect(pids.length).toBeGreaterThan(0);
      expect(processTree(pids).length).toBeGreaterThan(pids.length); // backends exist
      await cluster.stop();
      expect(processTree(pids)).toEqual([]);
    }
  });

  it('stop() and start() a replica; synchronous commits wait for a standby', async () => {
    const cluster = await startCluster({ replicas: 1, synchronous: true });
    try {
      const [s] = await cluster.query<{ sync_state: string }>(
        'primary',
        'SELECT sync_state FROM pg_stat_replication',
      );
      expect(s!.sync_state).toBe('quorum');
      await cluster.stopNode('replica1');
      // With the only synchronous standby down a commit is not acknowledged until it returns.
      let acknowledged = false;
      const pending = cluster.query('primary', 'CREATE TABLE s (id int)').then(() => {
        acknowledged = true;
      });
      await new Promise((r) => setTimeout(r, 400));
      expect(acknowledged).toBe(false);
      await cluster.start('replica1');
      await pending;
      expect(acknowledged).toBe(true);
      await cluster.query('primary', 'CREATE TABLE s2 (id int)');
    } finally {
      await cluster.stop();
    }
  });

  it('removes its folder on stop and refuses bad options', async () => {
    const cluster = await startCluster({ replicas: 0 });
    const dir = cluster.dir;
    await cluster.stop();
    expect(() => readdirSync(dir)).toThrow();
    await expect(startCluster({ replicas: -1 })).rejects.toThrow(/replicas must be/);
  });

  it('a blackholed connection is not a socket that answers', async () => {
    // Guards the proxy test above: a raw socket to a blackholed proxy gets no bytes.
    const cluster = await startCluster({ replicas: 0 });
    try {
      const proxy = await cluster.proxy('primary');
      proxy.blackhole();
      const socket = new Socket();
      const got = await new Promise<number>((resolve) => {
        let bytes = 0;
        socket.connect(proxy.port, proxy.host, () =>
          socket.write(Buffer.from([0, 0, 0, 8, 4, 210, 22, 47])),
        );
        socket.on('data', (d) => {
          bytes += d.length;
        });
        setTimeout(() => resolve(bytes), 300);
      });
      socket.destroy();
      expect(got).toBe(0);
    } finally {
      await cluster.stop();
    }
  });
});
