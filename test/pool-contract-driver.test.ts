// cluster.pool keeps pg.Pool's contract with the driver underneath: pg's `binary` results, a
// Client class of the application's own (a class extending pg.Client), and connection errors
// as the driver raised them, with pgpulse's account of them attached.
import { EventEmitter } from 'node:events';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  ConfigError,
  connectionFailureOf,
  createCluster,
  createPoolFromPgOptions,
  PgPulseError,
  type RoutingPool,
} from '../packages/core/src/index.js';

let sandbox: SandboxCluster;
const open: RoutingPool[] = [];
const clusters: Cluster[] = [];

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
  await sandbox.query('primary', 'CREATE TABLE driver_items (id int PRIMARY KEY, tag text)');
  await sandbox.waitForReplay();
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((p) => (p.ending ? undefined : p.end())));
  await Promise.all(clusters.map((c) => c.close()));
  await sandbox?.stop();
});

function pgPool(options: Record<string, unknown>): RoutingPool {
  const pool = createPoolFromPgOptions(
    { connectionString: sandbox.primary.url, ...options },
    { replicas: sandbox.replicas.map((r) => r.url), health: { intervalMs: 200 } },
  );
  open.push(pool);
  return pool;
}

// Types whose binary form pg parses differently from their text (int8, numeric and json have
// no binary parser in pg-types), so a text result cannot pass for a binary one.
const MIXED =
  'SELECT $1::int4 AS i, 5000000000::int8 AS big, $2::text AS t, 1.50::numeric AS n, \'{"a":1}\'::json AS j, ' +
  "'2024-01-02 03:04:05+00'::timestamptz AS ts, '{1,2}'::int4[] AS arr";

async function rawPg(binary: boolean): Promise<pg.QueryResult> {
  const client = new pg.Client({
    connectionString: sandbox.primary.url,
    binary,
  } as pg.ClientConfig);
  await client.connect();
  try {
    return await client.query(MIXED, [7, 'x']);
  } finally {
    await client.end();
  }
}

describe("pg's binary option", () => {
  it('a binary pool returns what a binary pg client returns, on the primary and on replicas', async () => {
    const [binary, text] = await Promise.all([rawPg(true), rawPg(false)]);
    // The yardstick differs from text, or this test would prove nothing.
    expect(binary.rows[0]).not.toEqual(text.rows[0]);
    const pool = pgPool({ binary: true });
    const viaRead = await pool.query(MIXED, [7, 'x']);
    const client = await pool.connect();
    expect((client as unknown as { binary: boolean }).binary).toBe(true);
    const inTransaction = await client
      .query('BEGIN')
      .then(() => client.query(MIXED, [7, 'x']))
      .finally(() => client.query('COMMIT'));
    client.release();
    for (const result of [viaRead, inTransaction]) {
      expect(result.rows).toEqual(binary.rows);
      expect(result.fields.map((f) => f.format)).toEqual(binary.fields.map((f) => f.format));
    }
    // Without the option nothing changes.
    const plain = pgPool({});
    expect((await plain.query(MIXED, [7, 'x'])).rows).toEqual(text.rows);
  });

  it('a context still reads its own writes on a binary pool (the replica replays nothing)', async () => {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: [sandbox.replicas[0]!.url],
      health: { intervalMs: 100 },
      replicaLag: { maxLagMs: null, maxLagBytes: null },
      consistency: { level: 'read-your-writes' },
      pool: { binary: true },
    });
    clusters.push(cluster);
    await cluster.ready();
    await sandbox.pauseReplay('replica1');
    try {
      for (let id = 1; id <= 5; id++) {
        const row = await cluster.context(async () => {
          await cluster.pool.query('INSERT INTO driver_items VALUES ($1, $2)', [id, `t${id}`]);
          const read = await cluster.pool.query('SELECT id, tag FROM driver_items WHERE id = $1', [
            id,
          ]);
          return read.rows[0];
        });
        expect(row).toEqual({ id, tag: `t${id}` });
      }
    } finally {
      await sandbox.resumeReplay('replica1');
    }
  });

  it('slow-statement capture still gets its plan on a binary pool (its EXPLAIN reads text)', async () => {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      pool: { binary: true },
      slowQuery: { thresholdMs: 1, explain: true, minExplainIntervalMs: 0 },
    });
    clusters.push(cluster);
    const sql = 'SELECT count(*), pg_sleep(0.005)::text AS slept FROM driver_items WHERE id > $1';
    await cluster.pool.query(sql, [0]);
    let plan: unknown;
    for (let i = 0; i < 400 && plan === undefined; i++) {
      plan = cluster.slowQueries().queries.find((q) => q.query.includes('driver_items'))?.plan;
      if (plan === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    // A binary json column would come back as a string: the capture reads a parsed plan.
    expect(plan).toBeDefined();
  });
});

describe('a Client class of your own', () => {
  it('a class extending pg.Client opens the application connections; health probes keep pg.Client', async () => {
    const made: Record<string, unknown>[] = [];
    class Instrumented extends pg.Client {
      constructor(config: pg.ClientConfig) {
        super(config);
        made.push({ ...config });
      }
    }
    const pool = pgPool({ Client: Instrumented, max: 2 });
    const client = await pool.connect();
    expect(made.length).toBeGreaterThan(0);
    // What pg.Pool would hand its Client: where the server is and the pool's timeouts.
    const url = new URL(sandbox.primary.url);
    expect(made[0]).toMatchObject({ host: url.hostname, port: Number(url.port) });
    const opened = made.length;
    await client.query('SELECT 1');
    client.release();
    await pool.query('SELECT 1');
    // Every physical connection of the pool is one: the probes opened none of these.
    expect(made.length).toBe(pool.totalCount);
    expect(opened).toBeLessThanOrEqual(pool.totalCount);
  });

  it('a look-alike constructor (not extending pg.Client) is called as pg.Pool calls it; its instances serve when they are pg clients', async () => {
    const made: Record<string, unknown>[] = [];
    // A factory in a plain function, as instrumentation libraries wrap pg.Client.
    const Factory = function Factory(config: pg.ClientConfig) {
      made.push({ ...config });
      return new pg.Client(config);
    };
    expect(Factory.prototype instanceof pg.Client).toBe(false);
    const pool = pgPool({ Client: Factory, max: 1 });
    const client = await pool.connect();
    const res = await client.query<{ n: number }>('SELECT 41 + 1 AS n');
    expect(res.rows[0]!.n).toBe(42);
    client.release();
    const url = new URL(sandbox.primary.url);
    expect(made[0]).toMatchObject({ host: url.hostname, port: Number(url.port) });
  });

  it("a look-alike's failed connect reaches the caller unchanged, with no 'connect' event", async () => {
    const failure = new Error('look-alike says no');
    const LookAlike = function LookAlike() {
      return Object.assign(new EventEmitter(), {
        connect(cb: (err?: Error) => void) {
          setImmediate(() => cb(failure));
        },
      });
    };
    const pool = pgPool({ Client: LookAlike });
    let connects = 0;
    pool.on('connect', () => connects++);
    const err = await pool.connect().catch((e: unknown) => e);
    expect(err).toBe(failure);
    const viaCallback = await new Promise<unknown>((resolve) => {
      pool.connect((e) => resolve(e));
    });
    expect(viaCallback).toBe(failure);
    expect(connects).toBe(0);
    expect(pool.totalCount).toBe(0);
  });

  it('a look-alike that connects but has no pg protocol stream is ended, and its connect fails with a ConfigError naming pool.Client', async () => {
    let ended = 0;
    const Opaque = function Opaque() {
      return Object.assign(new EventEmitter(), {
        connect(cb: (err?: Error) => void) {
          setImmediate(() => cb());
        },
        query() {
          throw new Error('never called: the instance is refused first');
        },
        end() {
          ended++;
          return Promise.resolve();
        },
      });
    };
    const pool = pgPool({ Client: Opaque, max: 1 });
    for (const attempt of [() => pool.connect(), () => pool.query('SELECT 1')]) {
      const err = (await attempt().catch((e: unknown) => e)) as ConfigError;
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.issues[0]?.field).toBe('pool.Client');
      expect(err.issues[0]?.message).toMatch(/protocol stream.*transaction status/);
    }
    expect(ended).toBeGreaterThanOrEqual(2);
    expect(pool.totalCount).toBe(0);
  });

  it('a Client that is not a constructor is refused up front with the reason', () => {
    let caught: unknown;
    try {
      createPoolFromPgOptions({ Client: { connect() {} } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const issue = (caught as ConfigError).issues.find((i) => i.field === 'Client');
    expect(issue?.message).toMatch(/protocol stream.*transaction status/);
  });
});

/**
 * A Client class that logs when each statement of interest (text starting with a marker) is
 * (a leading comment "pipelined a" logs as "a") is handed to pg and when its answer comes back: a pipelined send shows as a second 'send'
 * before the first 'done'.
 */
function recordingClient(log: string[], marker: string): typeof pg.Client {
  return class Recording extends pg.Client {
    // biome-ignore lint/suspicious/noExplicitAny: pg.Client#query's overloads, passed through.
    override query(...args: any[]): any {
      const first = args[0] as string | { text?: string };
      const text = typeof first === 'string' ? first : (first?.text ?? '');
      const result = (super.query as (...a: unknown[]) => unknown)(...args);
      if (text.startsWith(marker) && result instanceof Promise) {
        const tag = text.slice(marker.length).trim().split(' ')[0];
        log.push(`send ${tag}`);
        result.then(
          () => log.push(`done ${tag}`),
          () => log.push(`done ${tag}`),
        );
      }
      return result;
    }
  } as typeof pg.Client;
}

describe("pg's pipeline option", () => {
  it('a checked-out client reports pipeline as the pool was asked (false by default), and answers statements issued together in order', async () => {
    const plain = await pgPool({}).connect();
    expect((plain as unknown as { pipeline: boolean }).pipeline).toBe(false);
    plain.release();
    const client = await pgPool({ pipeline: true }).connect();
    expect((client as unknown as { pipeline: boolean }).pipeline).toBe(true);
    const answers = await Promise.all(
      [1, 2, 3].map((n) => client.query('SELECT $1::int AS num', [n])),
    );
    expect(answers.map((r) => r.rows[0].num)).toEqual([1, 2, 3]);
    client.release();
  });

  it('inside a transaction, statements issued together go out before the first answer; without pipeline, one at a time', async () => {
    const marker = '/* pipelined';
    const sendOrder = async (pipeline: boolean): Promise<string[]> => {
      const log: string[] = [];
      const pool = pgPool({ pipeline, max: 1, Client: recordingClient(log, marker) });
      const client = await pool.connect();
      await client.query('BEGIN');
      const rows = await Promise.all([
        client.query(`${marker} a */ SELECT pg_sleep(0.2)::text AS v`),
        client.query(`${marker} b */ SELECT 'b' AS v`),
        client.query(`${marker} c */ SELECT 'c' AS v`),
      ]);
      await client.query('COMMIT');
      client.release();
      expect(rows.map((r) => Object.keys(r.rows[0]))).toEqual([['v'], ['v'], ['v']]);
      return log;
    };
    expect(await sendOrder(false)).toEqual([
      'send a',
      'done a',
      'send b',
      'done b',
      'send c',
      'done c',
    ]);
    const pipelined = await sendOrder(true);
    expect(pipelined.slice(0, 3)).toEqual(['send a', 'send b', 'send c']);
    expect(pipelined.filter((e) => e.startsWith('done'))).toEqual(['done a', 'done b', 'done c']);
  });

  it('a pipelined transaction keeps its meaning: an error aborts what follows, ROLLBACK undoes it, COMMIT keeps every row', async () => {
    const pool = pgPool({ pipeline: true, max: 1 });
    const client = await pool.connect();
    await client.query('BEGIN');
    const settled = await Promise.allSettled([
      client.query("INSERT INTO driver_items VALUES (901, 'p') RETURNING id"),
      client.query('SELECT 1 / 0'),
      client.query("INSERT INTO driver_items VALUES (902, 'p')"),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect(((settled[1] as PromiseRejectedResult).reason as { code?: string }).code).toBe('22012');
    expect(((settled[2] as PromiseRejectedResult).reason as { code?: string }).code).toBe('25P02');
    await client.query('ROLLBACK');
    await client.query('BEGIN');
    const inserts = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.query("INSERT INTO driver_items VALUES ($1, 'p') RETURNING id", [910 + i]),
      ),
    );
    expect(inserts.map((r) => r.rows[0].id)).toEqual(Array.from({ length: 20 }, (_, i) => 910 + i));
    await client.query('COMMIT');
    client.release();
    const kept = await sandbox.query<{ n: number }>(
      'primary',
      "SELECT count(*)::int AS n FROM driver_items WHERE tag = 'p' AND id BETWEEN 900 AND 999",
    );
    expect(kept[0]?.n).toBe(20);
    // The connection went back outside any transaction and serves the next caller.
    expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  });

  it('a pg whose Client does not pipeline: the first statement fails with a ConfigError naming pool.pipeline', async () => {
    class NoPipeline extends pg.Client {
      constructor(config: pg.ClientConfig) {
        super(config);
        // What a pg before 8.23 leaves: no pipeline flag at all.
        (this as unknown as { pipeline: unknown }).pipeline = undefined;
      }
    }
    const pool = pgPool({ pipeline: true, Client: NoPipeline, max: 1 });
    const err = (await pool.query('SELECT 1').catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.issues[0]?.field).toBe('pool.pipeline');
    expect(err.issues[0]?.message).toMatch(/pg 8\.23/);
  });
});

describe("a failed connect, as the driver gave it (ORMs map the driver's codes)", () => {
  it("a server that hangs up: pool.connect() and pool.query() fail with the driver's error (ECONNRESET), pgpulse's account attached", async () => {
    const { createServer } = await import('node:net');
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const pool = createPoolFromPgOptions({ host: '127.0.0.1', port, max: 1 });
      open.push(pool);
      for (const attempt of [() => pool.connect(), () => pool.query('SELECT 1')]) {
        const err = (await attempt().catch((e: unknown) => e)) as Error & {
          code?: string;
          syscall?: string;
        };
        expect(err).toBeInstanceOf(Error);
        expect(err).not.toBeInstanceOf(PgPulseError);
        // pg's own words for a server hanging up: a reset read, or the stream ending first.
        if (err.code !== undefined) expect(err.code).toBe('ECONNRESET');
        else expect(err.message).toBe('Connection terminated unexpectedly');
        const context = connectionFailureOf(err);
        expect(context).toMatchObject({
          code: 'PGPULSE_NODE_CONNECTION',
          node: { name: 'primary', port },
          retriable: true,
        });
        expect(context?.message).toMatch(/Could not connect to/);
      }
    } finally {
      server.close();
    }
  });

  it("a database that does not exist: the server's own 3D000 error (severity and all), not a wrapper", async () => {
    const url = new URL(sandbox.primary.url);
    url.pathname = '/no_such_database';
    const pool = createPoolFromPgOptions({ connectionString: url.toString() });
    open.push(pool);
    const err = (await pool.query('SELECT 1').catch((e: unknown) => e)) as {
      code?: string;
      severity?: string;
    };
    expect(err.code).toBe('3D000');
    expect(err.severity).toBe('FATAL');
    expect(connectionFailureOf(err)?.failure).toBe('unknown-database');
    expect(JSON.stringify(err)).not.toContain(decodeURIComponent(url.password));
  });
});
