// cluster.pool keeps pg.Pool's contract for its clients: what the figures say from the first
// call, what a checked-out client is (identity, _ending, end(), its connection's errors), and
// pg.Pool's maxUses and min, through createPoolFromPgOptions as a pg.Pool user builds it.
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPoolFromPgOptions, type RoutingPool } from '../packages/core/src/index.js';

let sandbox: SandboxCluster;
const open: RoutingPool[] = [];

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((p) => (p.ending ? undefined : p.end())));
  await sandbox?.stop();
});

/** A pg.Pool-style pool over the sandbox: its primary and (unless told) its replica. */
function pgPool(options: Record<string, unknown> = {}, withReplica = true): RoutingPool {
  const pool = createPoolFromPgOptions(options, {
    replicas: withReplica ? sandbox.replicas.map((r) => r.url) : [],
    health: { intervalMs: 200 },
  });
  open.push(pool);
  return pool;
}

function primaryOptions(): Record<string, unknown> {
  return { connectionString: sandbox.primary.url };
}

describe("the figures from the first call, as pg.Pool's", () => {
  it("pgpulse's own start-up reads take no connection of the pool and run no set-up hook", async () => {
    let hooks = 0;
    const pool = pgPool({
      ...primaryOptions(),
      onConnect: () => {
        hooks++;
        if (hooks === 1) throw new Error('first hook fails');
      },
    });
    expect(pool.totalCount).toBe(0);
    // The hook's first call is the application's first connection, so that connect fails.
    await expect(pool.connect()).rejects.toThrow('first hook fails');
    expect(pool.totalCount).toBe(0);
    const client = await pool.connect();
    expect(hooks).toBe(2);
    expect(pool.totalCount).toBe(1);
    client.release();
  });

  it('a pool.query counts in totalCount within the call, and max bounds it (the rest wait)', async () => {
    // One node: max is per node, so with a replica two statements could be opening at once.
    const pool = pgPool({ ...primaryOptions(), max: 1 }, false);
    const first = pool.query('SELECT 1');
    expect(pool.totalCount).toBe(1);
    const more = [pool.query('SELECT 2'), pool.query('SELECT 3')];
    expect(pool.totalCount).toBe(1);
    expect(pool.waitingCount).toBe(2);
    await Promise.all([first, ...more]);
    expect(pool.totalCount).toBe(1);
    expect(pool.idleCount).toBe(1);
    expect(pool.waitingCount).toBe(0);
  });

  it('_clients lists the face of every open connection', async () => {
    const pool = pgPool(primaryOptions());
    const faces: unknown[] = [];
    pool.on('connect', (client: unknown) => faces.push(client));
    const client = await pool.connect();
    expect(pool._clients).toEqual(faces);
    expect(pool._clients).toHaveLength(1);
    client.release();
  });
});

describe('a checked-out client', () => {
  it('is the same object when the same connection is handed out again', async () => {
    const pool = pgPool(primaryOptions());
    const first = await pool.connect();
    first.release();
    const second = await pool.connect();
    expect(second).toBe(first);
    second.release();
  });

  it("gets its connection's error when the server side of it goes away; release drops it", async () => {
    const pool = pgPool({ ...primaryOptions(), max: 1 });
    const client = await pool.connect();
    const failed = new Promise<Error>((resolve) => client.once('error', resolve));
    (client as unknown as { connection: { end(): void } }).connection.end();
    expect(await failed).toBeInstanceOf(Error);
    expect(pool.totalCount).toBe(1);
    client.release();
    expect(pool.totalCount).toBe(0);
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('end() closes the connection it holds; it takes no more statements; release drops it', async () => {
    const pool = pgPool({ ...primaryOptions(), max: 1 });
    const client = await pool.connect();
    await (client as unknown as { end(): Promise<void> }).end();
    expect((client as unknown as { _ending: boolean })._ending).toBe(true);
    await expect(client.query('SELECT 1')).rejects.toThrow(/not queryable/);
    client.release();
    expect(pool.totalCount).toBe(0);
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});

describe("pg.Pool's maxUses and min", () => {
  it('maxUses: the release that spends the last use closes the connection, with the log line', async () => {
    const messages: string[] = [];
    const pool = pgPool({ ...primaryOptions(), maxUses: 2, log: (m: string) => messages.push(m) });
    const first = await pool.connect();
    first.release();
    const second = await pool.connect();
    expect(second).toBe(first);
    const state = second as unknown as { _ending: boolean };
    expect(state._ending).toBe(false);
    second.release();
    expect(state._ending).toBe(true);
    expect(messages).toContain('remove expended client');
    const third = await pool.connect();
    expect(third).not.toBe(first);
    third.release();
  });

  it('min keeps idle connections but does not replace one that maxUses spent', async () => {
    const pool = pgPool({ ...primaryOptions(), max: 1, min: 1, idleTimeoutMillis: 10, maxUses: 1 });
    expect(pool.totalCount).toBe(0);
    (await pool.connect()).release();
    // A window, not a wait: min must not open a replacement in it (10x the idle timeout).
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.totalCount).toBe(0);
    expect(pool.idleCount).toBe(0);
  });

  it('min keeps an idle connection past the idle timeout', async () => {
    const pool = pgPool({ ...primaryOptions(), max: 2, min: 1, idleTimeoutMillis: 10 });
    const a = await pool.connect();
    const b = await pool.connect();
    a.release();
    b.release();
    // The connection above min closes at its idle timeout, however late a loaded machine fires it...
    await waitUntil(() => (pool._clients as pg.Client[]).length < 2, {
      message: 'the connection above min was not closed at its idle timeout',
    });
    // ...then a window, not a wait: the one min keeps must not close in it (10x the timeout).
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.idleCount).toBe(1);
    const physical = pool._clients as pg.Client[];
    expect(physical).toHaveLength(1);
  });
});

describe("pgpulse's own work and the pool's size", () => {
  it("a slow statement's EXPLAIN takes only a connection left idle; it never opens one", async () => {
    // The statement's connection expires while it runs, so none is idle afterwards.
    const pool = pgPool({ ...primaryOptions(), maxLifetimeSeconds: 1 }, false);
    let connects = 0;
    pool.on('connect', () => connects++);
    await pool.query('SELECT pg_sleep(1.2)');
    // A window, not a wait: the EXPLAIN would run in it, and must not open a connection.
    await new Promise((r) => setTimeout(r, 300));
    expect(connects).toBe(1);
    expect(pool.totalCount).toBe(0);
  });
});
