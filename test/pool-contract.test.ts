// cluster.pool keeps pg.Pool's contract: events, figures, end(), callbacks and errors.
import net from 'node:net';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

let sandbox: SandboxCluster;
const open: Cluster[] = [];

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
  await sandbox?.stop();
});

function cluster(pool: Record<string, unknown> = {}): Cluster {
  const c = createCluster({
    primary: sandbox.primary.url,
    replicas: sandbox.replicas.map((r) => r.url),
    pool: { prePing: false, ...pool },
    health: { intervalMs: 200 },
  });
  open.push(c);
  return c;
}

describe('connect event and set-up hooks', () => {
  it('a SET sent from the connect listener holds on every physical connection, replicas too', async () => {
    const c = cluster();
    const seen: pg.Client[] = [];
    c.pool.on('connect', (client: pg.Client) => {
      seen.push(client);
      void client.query("SET TIME ZONE 'Asia/Tokyo'");
    });
    await c.ready();
    const zones = new Set<string>();
    const nodes = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const read = await c.pool.query<{ tz: string }>('SELECT current_setting($1) AS tz', [
        'TimeZone',
      ]);
      zones.add(read.rows[0]!.tz);
    }
    const write = await c.primary(() =>
      c.pool.query<{ tz: string }>("SELECT current_setting('TimeZone') AS tz"),
    );
    zones.add(write.rows[0]!.tz);
    for (const n of c.stats().nodes) if (n.counters.queries > 0) nodes.add(n.role);
    expect([...nodes].sort()).toEqual(['primary', 'replica']);
    expect([...zones]).toEqual(['Asia/Tokyo']);
    expect(seen.length).toBeGreaterThanOrEqual(2);
  });

  it('an async set-up hook runs before the first statement, and its failure fails that checkout', async () => {
    const c = cluster();
    let fail = true;
    c.pool.addConnectionSetup(async (client) => {
      if (fail) throw new Error('set-up refused');
      await client.query("SET application_name = 'set-up-hook'");
    });
    await expect(c.pool.connect()).rejects.toThrow('set-up refused');
    expect(c.pool.totalCount).toBe(0);
    fail = false;
    const { rows } = await c.pool.query<{ name: string }>(
      "SELECT current_setting('application_name') AS name",
    );
    expect(rows[0]!.name).toBe('set-up-hook');
  });
});

describe('acquire, release, remove and error events; figures', () => {
  it('pool.query and connect() each emit acquire and release once', async () => {
    const c = cluster();
    let acquired = 0;
    let released = 0;
    c.pool.on('acquire', () => acquired++);
    c.pool.on('release', (err: unknown) => {
      expect(err).toBeUndefined();
      released++;
    });
    await Promise.all(Array.from({ length: 5 }, () => c.pool.query('SELECT 1')));
    for (let i = 0; i < 5; i++) (await c.pool.connect()).release();
    expect(acquired).toBe(10);
    expect(released).toBe(10);
  });

  it('release(err) reports the error and destroys the held connection (remove)', async () => {
    const c = cluster();
    const removed: unknown[] = [];
    c.pool.on('remove', (client: unknown) => removed.push(client));
    const client = await c.pool.connect();
    expect(c.pool.totalCount).toBe(1);
    expect(c.pool.idleCount).toBe(0);
    const problem = new Error('problem');
    const reported = new Promise<unknown>((resolve) => c.pool.once('release', resolve));
    client.release(problem);
    expect(await reported).toBe(problem);
    expect(removed).toHaveLength(1);
    expect(c.pool.totalCount).toBe(0);
  });

  it('an idle connection that fails is removed and reported as error with its client', async () => {
    const c = cluster();
    const physical: pg.Client[] = [];
    c.pool.on('connect', (client: pg.Client) => physical.push(client));
    (await c.pool.connect()).release();
    expect(c.pool.idleCount).toBe(1);
    const reported = new Promise<[Error, unknown]>((resolve) =>
      c.pool.once('error', (err: Error, client: unknown) => resolve([err, client])),
    );
    physical[0]!.emit('error', new Error('socket gone'));
    const [err, client] = await reported;
    expect(err.message).toBe('socket gone');
    expect(client).toBe(physical[0]);
    expect(c.pool.idleCount).toBe(0);
    expect(c.pool.totalCount).toBe(0);
  });

  it('waitingCount counts checkouts queued behind a full pool', async () => {
    const c = cluster({ maxSize: 1 });
    const first = await c.pool.connect();
    const second = c.pool.connect();
    // Counted at once, as pg.Pool counts a checkout the moment it queues.
    expect(c.pool.waitingCount).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.pool.waitingCount).toBe(1);
    first.release();
    (await second).release();
    expect(c.pool.waitingCount).toBe(0);
  });
});

describe('end()', () => {
  it('lets statements already issued finish, then refuses new ones', async () => {
    const c = cluster();
    const issued = Array.from({ length: 8 }, (_, i) =>
      c.pool.query<{ n: number }>('SELECT $1::int AS n', [i]),
    );
    await c.pool.end();
    const results = await Promise.all(issued);
    expect(results.map((r) => r.rows[0]!.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await expect(c.pool.query('SELECT 1')).rejects.toThrow();
    await expect(c.pool.connect()).rejects.toThrow();
  });

  it('a second end() fails like pg, and end(cb) returns nothing', async () => {
    const c = cluster();
    const done = new Promise<unknown>((resolve) => {
      expect(c.pool.end(() => resolve('first'))).toBeUndefined();
    });
    expect(await done).toBe('first');
    await expect(c.pool.end()).rejects.toThrow('Called end on pool more than once');
    const err = await new Promise<unknown>((resolve) =>
      (c.pool.end as (cb: (e?: Error) => void) => void)(resolve),
    );
    expect(err).toBeInstanceOf(Error);
  });
});

describe('callback forms', () => {
  it('pool.query(fn) answers through the callback, asynchronously', async () => {
    const c = cluster();
    let sync = true;
    const err = await new Promise<unknown>((resolve) => {
      (c.pool.query as unknown as (cb: (e: unknown) => void) => void)((e) => {
        expect(sync).toBe(false);
        resolve(e);
      });
      sync = false;
    });
    expect(err).toBeInstanceOf(Error);
  });

  it('pool.query with a callback passes undefined as the error on success', async () => {
    const c = cluster();
    const [err, rows] = await new Promise<[unknown, unknown]>((resolve) => {
      c.pool.query('SELECT 1 AS one', (e: unknown, res: pg.QueryResult) => resolve([e, res.rows]));
    });
    expect(err).toBeUndefined();
    expect(rows).toEqual([{ one: 1 }]);
  });

  it('a throw inside a connect callback is an uncaught exception, not an unhandled rejection', async () => {
    const c = cluster();
    const rejections: unknown[] = [];
    const onRejection = (r: unknown) => rejections.push(r);
    process.on('unhandledRejection', onRejection);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const thrown = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
    try {
      c.pool.connect((_err, _client, done) => {
        done?.();
        throw new Error('thrown by the callback');
      });
      expect(((await thrown) as Error).message).toBe('thrown by the callback');
      await new Promise((r) => setTimeout(r, 20));
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
      for (const l of listeners) process.on('uncaughtException', l);
    }
  });

  it('connect() against a server that is down fails, and the callback still gets a done', async () => {
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const c = createCluster({ primary: { host: '127.0.0.1', port }, health: { timeoutMs: 500 } });
    open.push(c);
    try {
      await expect(c.pool.connect()).rejects.toThrow();
      const [err, client, done] = await new Promise<unknown[]>((resolve) =>
        c.pool.connect((...args) => resolve(args)),
      );
      expect(err).toBeInstanceOf(Error);
      expect(client).toBeUndefined();
      expect(typeof done).toBe('function');
    } finally {
      server.close();
    }
  });
});
