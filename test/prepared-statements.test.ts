import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  ConfigError,
  createCluster,
  type PgPulseConfig,
  type PoolingMode,
} from '../packages/core/src/index.js';

let sandbox: SandboxCluster;
const clusters: Cluster[] = [];

function cluster(extra: Partial<PgPulseConfig> = {}, replicas = true): Cluster {
  const c = createCluster({
    primary: sandbox.primary.url,
    replicas: replicas ? sandbox.replicas.map((r) => r.url) : [],
    telemetry: { enabled: false },
    ...extra,
    preparedStatements: { enabled: true, ...extra.preparedStatements },
  });
  clusters.push(c);
  return c;
}

/** The server's own list of this connection's prepared statements (a pool of one connection). */
async function serverStatements(c: Cluster): Promise<{ name: string; statement: string }[]> {
  const client = await c.pool.connect();
  try {
    // A transaction pins the one connection and is never prepared itself.
    await client.query('BEGIN');
    const { rows } = await client.query<{ name: string; statement: string }>(
      'SELECT name, statement FROM pg_prepared_statements ORDER BY name',
    );
    await client.query('COMMIT');
    return rows;
  } finally {
    client.release();
  }
}

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
  await sandbox.query(
    'primary',
    `CREATE TABLE items (id int PRIMARY KEY, name text);
     INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 100) i;
     CREATE TABLE log (id serial PRIMARY KEY, note text);`,
  );
  await sandbox.waitForReplay();
});

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.close()));
  await sandbox?.stop();
});

const POINT = 'SELECT id, name FROM items WHERE id = $1';

describe('automatic prepared statements', () => {
  it('prepares a recurring text once per connection and then sends it by name, on the primary and the replica', async () => {
    const c = cluster({ pool: { maxSize: 1 } });
    // Every node probed first: a cold start's first reads go to the primary (#22).
    await c.ready();
    for (let i = 1; i <= 10; i++) {
      const { rows } = await c.pool.query(POINT, [i]);
      expect(rows).toEqual([{ id: i, name: `item ${i}` }]);
    }
    // Seen from the replica's server side: the one connection holds the statement by name.
    const onServer = await c.pool.query<{ name: string; statement: string }>(
      "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'pgpulse\\_%'",
    );
    expect(onServer.rows.map((r) => r.statement)).toContain(POINT);
    // Writes too (a recurring UPDATE), on the primary.
    for (let i = 0; i < 4; i++)
      await c.pool.query('UPDATE items SET name = name WHERE id = $1', [1]);
    const stats = c.stats().preparedStatements;
    expect(stats.enabled).toBe(true);
    const replica = stats.byNode['replica-1'];
    const primary = stats.byNode.primary;
    // First sighting unnamed; the second prepares; the rest run by name.
    expect(replica?.prepared).toBe(1);
    expect(replica?.executedByName).toBe(8);
    expect(primary?.prepared).toBe(1);
    expect(primary?.executedByName).toBe(2);
  });

  it('a statement sent by name fails as pg fails it: the DatabaseError with its code, a stack through the caller, the connection reusable', async () => {
    const c = cluster({ pool: { maxSize: 1 } }, false);
    await c.ready();
    const DIVIDE = 'SELECT 1 / $1::int AS q';
    // Second and third sightings: prepared, then by name.
    for (let i = 0; i < 3; i++) await c.pool.query(DIVIDE, [1]);
    async function callerOfTheStatement(): Promise<unknown> {
      return c.pool.query(DIVIDE, [0]).then(
        () => undefined,
        (err: unknown) => err,
      );
    }
    const err = await callerOfTheStatement();
    expect(err).toBeInstanceOf(pg.DatabaseError);
    expect((err as pg.DatabaseError).code).toBe('22012');
    expect((err as Error).stack).toContain('prepared-statements.test.ts');
    expect(c.stats().preparedStatements.byNode.primary?.executedByName).toBe(2);
    // The one connection serves the next statement, by name.
    expect((await c.pool.query(DIVIDE, [2])).rows).toEqual([{ q: 0 }]);
    expect(c.stats().preparedStatements.byNode.primary?.executedByName).toBe(3);
  });

  it('leaves user-named statements, multi-statement text and utility statements alone', async () => {
    const c = cluster({ pool: { maxSize: 1 } }, false);
    for (let i = 0; i < 3; i++) {
      await c.pool.query({
        name: 'mine',
        text: 'SELECT name FROM items WHERE id = $1',
        values: [2],
      });
      await c.pool.query('SELECT 1 AS a; SELECT 2 AS b');
      await c.pool.query('SHOW server_version');
    }
    const names = (await serverStatements(c)).map((r) => r.name);
    expect(names).toEqual(['mine']);
    expect(c.stats().preparedStatements.prepared).toBe(0);
  });

  it('keeps at most maxPerConnection prepared on a connection, deallocating the least recently used', async () => {
    const c = cluster({ pool: { maxSize: 1 }, preparedStatements: { maxPerConnection: 5 } }, false);
    for (let round = 0; round < 3; round++) {
      for (let k = 0; k < 20; k++) {
        const { rows } = await c.pool.query(`SELECT id, ${k} AS k FROM items WHERE id = $1`, [
          k + 1,
        ]);
        expect(rows).toEqual([{ id: k + 1, k }]);
      }
    }
    const stats = c.stats().preparedStatements;
    const held = (await serverStatements(c)).filter((r) => r.name.startsWith('pgpulse_'));
    expect(held.length).toBeGreaterThan(0);
    expect(held.length).toBeLessThanOrEqual(5);
    expect(stats.deallocated).toBeGreaterThanOrEqual(stats.prepared - 5);
    expect(stats.reprepared).toBe(0);
  });

  it('a schema change in the middle of a prepared workload (add a column; drop and recreate the table) gives no error', async () => {
    await sandbox.query(
      'primary',
      `CREATE TABLE churn (id int PRIMARY KEY, v text);
       INSERT INTO churn SELECT i, 'v' || i FROM generate_series(1, 50) i;
       CREATE TABLE churn_log (id serial PRIMARY KEY, note text);`,
    );
    const c = cluster({ pool: { maxSize: 4 } }, false);
    const errors: unknown[] = [];
    let inserts = 0;
    let running = true;
    const worker = async (w: number) => {
      for (let i = 0; running; i++) {
        try {
          await c.pool.query('SELECT * FROM churn WHERE id = $1', [(i % 50) + 1]);
          // A write whose result type changes too: it must never run twice.
          await c.pool.query('INSERT INTO churn_log (note) VALUES ($1) RETURNING *', [`w${w}`]);
          inserts++;
        } catch (err) {
          errors.push(err);
        }
      }
    };
    const workers = [0, 1, 2, 3].map(worker);
    const pause = () => new Promise((r) => setTimeout(r, 150));
    await pause();
    await sandbox.query('primary', 'ALTER TABLE churn ADD COLUMN extra int DEFAULT 7');
    await sandbox.query('primary', 'ALTER TABLE churn_log ADD COLUMN at timestamptz DEFAULT now()');
    await pause();
    // Atomic for the readers: they wait on the lock and then see the new table.
    await sandbox.query(
      'primary',
      `BEGIN;
       DROP TABLE churn;
       CREATE TABLE churn (id int PRIMARY KEY, v text, other boolean DEFAULT true);
       INSERT INTO churn SELECT i, 'w' || i FROM generate_series(1, 50) i;
       COMMIT;`,
    );
    await pause();
    running = false;
    await Promise.all(workers);
    expect(errors).toEqual([]);
    const stats = c.stats().preparedStatements;
    expect(stats.reprepared).toBeGreaterThan(0);
    expect(stats.executedByName).toBeGreaterThan(0);
    const rows = await sandbox.query<{ n: string }>(
      'primary',
      'SELECT count(*)::text AS n FROM churn_log',
    );
    // Every acknowledged insert ran once: none was retried after it executed.
    expect(Number(rows[0]?.n)).toBe(inserts);
    const after = await c.pool.query('SELECT * FROM churn WHERE id = $1', [3]);
    expect(after.rows).toEqual([{ id: 3, v: 'w3', other: true }]);
  });

  it('inside a transaction statements are sent unnamed and the transaction is unharmed by a schema change', async () => {
    const c = cluster({ pool: { maxSize: 1 } }, false);
    await c.pool.query(POINT, [1]);
    await c.pool.query(POINT, [1]);
    const before = c.stats().preparedStatements;
    const client = await c.pool.connect();
    try {
      await client.query('BEGIN');
      for (let i = 1; i <= 5; i++) {
        const { rows } = await client.query(POINT, [i]);
        expect(rows).toHaveLength(1);
      }
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const after = c.stats().preparedStatements;
    expect(after.executedByName).toBe(before.executedByName);
    expect(after.prepared).toBe(before.prepared);
    // Out of the transaction again: by name.
    await c.pool.query(POINT, [1]);
    expect(c.stats().preparedStatements.executedByName).toBe(before.executedByName + 1);
  });

  it('DISCARD ALL and DEALLOCATE on a pinned connection reset its set; user names keep working after their DEALLOCATE', async () => {
    const c = cluster({ pool: { maxSize: 1, pooling: 'session' } }, false);
    const client = await c.pool.connect();
    try {
      for (let i = 0; i < 3; i++) await client.query(POINT, [1]);
      await client.query('DISCARD ALL');
      for (let i = 0; i < 3; i++) await client.query(POINT, [1]);
      await client.query('DEALLOCATE ALL');
      await client.query(POINT, [1]);
      for (let i = 0; i < 3; i++) {
        await client.query({
          name: 'own',
          text: 'SELECT name FROM items WHERE id = $1',
          values: [5],
        });
      }
      await client.query('DEALLOCATE own');
      const again = await client.query({
        name: 'own',
        text: 'SELECT name FROM items WHERE id = $1',
        values: [5],
      });
      expect(again.rows).toEqual([{ name: 'item 5' }]);
      await client.query('SET search_path = public');
      await client.query(POINT, [1]);
    } finally {
      client.release();
    }
    const stats = c.stats().preparedStatements;
    // The resets were seen, not discovered through a failure.
    expect(stats.reprepared).toBe(0);
    expect(stats.prepared).toBe(4);
    expect(stats.deallocated).toBe(1);
  });

  for (const pooling of ['transaction', 'session', 'statement'] as PoolingMode[]) {
    it(`works in ${pooling} pooling`, async () => {
      const c = cluster({ pool: { maxSize: 2, pooling } });
      for (let i = 1; i <= 6; i++) {
        expect((await c.pool.query(POINT, [i])).rows).toEqual([{ id: i, name: `item ${i}` }]);
      }
      const client = await c.pool.connect();
      try {
        for (let i = 1; i <= 4; i++) {
          expect((await client.query(POINT, [i])).rows).toHaveLength(1);
        }
      } finally {
        client.release();
      }
      const stats = c.stats().preparedStatements;
      expect(stats.prepared + stats.executedByName).toBeGreaterThanOrEqual(8);
      expect(stats.executedByName).toBeGreaterThan(0);
    });
  }

  it('is off by default, can be turned off, and its options are checked with dotted paths', async () => {
    const plain = createCluster({ primary: sandbox.primary.url, telemetry: { enabled: false } });
    clusters.push(plain);
    expect(plain.stats().preparedStatements.enabled).toBe(false);
    const c = cluster({ pool: { maxSize: 1 }, preparedStatements: { enabled: false } }, false);
    for (let i = 0; i < 3; i++) await c.pool.query(POINT, [1]);
    expect(c.stats().preparedStatements.prepared).toBe(0);
    expect((await serverStatements(c)).length).toBe(0);
    const bad = (preparedStatements: unknown) => {
      try {
        createCluster({
          primary: sandbox.primary.url,
          preparedStatements,
        } as PgPulseConfig);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const typo = bad({ maxPerConection: 5 });
    expect(typo).toBeInstanceOf(ConfigError);
    expect((typo as ConfigError).issues[0]?.field).toBe('preparedStatements.maxPerConection');
    expect((typo as ConfigError).message).toContain('maxPerConnection');
    const zero = bad({ maxPerConnection: 0 });
    expect((zero as ConfigError).issues[0]?.field).toBe('preparedStatements.maxPerConnection');
  });

  it('marks the span of a statement sent by name', async () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const c = cluster({ pool: { maxSize: 1 }, telemetry: { tracerProvider } }, false);
    for (let i = 0; i < 3; i++) await c.pool.query(POINT, [1]);
    const marks = exporter.getFinishedSpans().map((s) => s.attributes['pgpulse.prepared']);
    expect(marks).toEqual([undefined, 'prepare', 'by-name']);
  });
});
