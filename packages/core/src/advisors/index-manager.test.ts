import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExplainJson } from '../analysis/plan.js';
import { analyzePlan } from '../analysis/plan-analyzer.js';
import { redactPlan } from '../analysis/redact-plan.js';
import {
  adviseIndexes,
  applyRecommendations,
  dropIndex,
  type IndexRecommendation,
  indexLockKey,
  rebuildIndex,
} from './index.js';

let sandbox: SandboxCluster;
let client: pg.Client;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 0 });
  client = await sandbox.connect('primary');
  await client.query(`
    CREATE EXTENSION pgstattuple;
    CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int, note text);
    INSERT INTO orders (customer_id, note)
      SELECT (g % 5000) + 1, 'n' FROM generate_series(1, 200000) g;
    CREATE TABLE tickets (id serial PRIMARY KEY, status text NOT NULL, assignee int);
    INSERT INTO tickets (status, assignee)
      SELECT CASE WHEN g % 20 = 0 THEN 'open' WHEN g % 2 = 0 THEN 'closed' ELSE 'done' END,
             g % 3000
        FROM generate_series(1, 200000) g;
    CREATE TABLE devices (id int PRIMARY KEY);
    INSERT INTO devices SELECT g FROM generate_series(1, 100) g;
    CREATE TABLE measurements (device_id int REFERENCES devices (id), at date NOT NULL, v int)
      PARTITION BY RANGE (at);
    CREATE TABLE m2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE m2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
      PARTITION BY HASH (device_id);
    CREATE TABLE m2025_0 PARTITION OF m2025 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
    CREATE TABLE m2025_1 PARTITION OF m2025 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
    INSERT INTO measurements
      SELECT (g % 100) + 1, DATE '2024-06-01' + (g % 400), g FROM generate_series(1, 20000) g;
    CREATE TABLE readings (device_id int, at date NOT NULL) PARTITION BY RANGE (at);
    CREATE TABLE r1 PARTITION OF readings FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
    CREATE TABLE r2 PARTITION OF readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    -- What a run stopped half-way leaves: the parent index and one unattached partition index.
    CREATE INDEX readings_device_id_idx ON ONLY readings (device_id);
    CREATE INDEX r1_device_id_idx ON r1 (device_id);
    CREATE TABLE busy (id int, v int);
    INSERT INTO busy SELECT g, g % 100 FROM generate_series(1, 10000) g;
    CREATE TABLE bloaty (id int);
    INSERT INTO bloaty SELECT g FROM generate_series(1, 200000) g;
    CREATE INDEX bloaty_id ON bloaty (id);
    DELETE FROM bloaty WHERE id % 10 <> 0;
    CREATE TABLE inv2 (a int);
    INSERT INTO inv2 VALUES (1), (2);
    CREATE TABLE dup (a int, b int);
    CREATE INDEX dup_a ON dup (a);
    CREATE INDEX dup_a_b ON dup (a, b);
    CREATE SCHEMA "My ""Schema""";
    CREATE TABLE "My ""Schema"""."Weird ""Name""" ("Cust""Id" int, "Note" text);
    INSERT INTO "My ""Schema"""."Weird ""Name"""
      SELECT g % 4000, 'x' FROM generate_series(1, 200000) g;
    CREATE TABLE canary (x int);
  `);
  await expect(
    client.query('CREATE INDEX CONCURRENTLY inv2_expr ON inv2 ((10 / (a - 1)))'),
  ).rejects.toThrow();
  await client.query('VACUUM ANALYZE');
}, 120_000);

afterAll(async () => {
  await client?.end();
  await sandbox?.stop();
});

async function recommendationFor(sql: string, redact = true): Promise<IndexRecommendation> {
  const result = await client.query(`EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ${sql}`);
  const raw = parseExplainJson(result.rows);
  const plan = redact ? redactPlan(raw) : raw;
  const report = await adviseIndexes(client, {
    slowQueries: [
      { query: sql, calls: 1000, totalMs: 60_000, plan: { findings: analyzePlan(plan), plan } },
    ],
  });
  const rec = report.recommendations.find((r) => r.source === 'slow-query');
  if (rec === undefined) throw new Error(`no recommendation for ${sql}`);
  return rec;
}

interface IndexRow {
  name: string;
  valid: boolean;
  columns: string[];
  predicate: string | null;
}

async function indexesOf(table: string): Promise<IndexRow[]> {
  const result = await client.query<IndexRow>(
    `SELECT c.relname AS name, i.indisvalid AS valid,
            ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
                   ORDER BY k.o) AS columns,
            pg_get_expr(i.indpred, i.indrelid) AS predicate
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = to_regclass($1) ORDER BY 1`,
    [table],
  );
  return result.rows;
}

async function canaryExists(): Promise<boolean> {
  const r = await client.query("SELECT to_regclass('public.canary') IS NOT NULL AS ok");
  return r.rows[0].ok === true;
}

describe('applyRecommendations against the sandbox', () => {
  let orders: IndexRecommendation;

  beforeAll(async () => {
    orders = await recommendationFor('SELECT * FROM orders WHERE customer_id = 42');
  });

  it('starts from a priority >= 4 recommendation for orders.customer_id', () => {
    expect(orders).toMatchObject({
      table: 'orders',
      columns: ['customer_id'],
      sql: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "orders_customer_id_idx" ON "public"."orders" USING btree ("customer_id")',
    });
    expect(orders.priority).toBeGreaterThanOrEqual(4);
  });

  it('refuses a connection inside a transaction block, before any DDL', async () => {
    await client.query('BEGIN');
    try {
      await expect(applyRecommendations(client, [orders])).rejects.toMatchObject({
        code: 'PGPULSE_INDEX_IN_TRANSACTION',
      });
    } finally {
      await client.query('ROLLBACK');
    }
    expect(await indexesOf('orders')).toHaveLength(1);
  });

  it('reports locked and builds nothing while another session holds the table lock', async () => {
    const other = await sandbox.connect('primary');
    try {
      const key = indexLockKey('public', 'orders').toString();
      await other.query('SELECT pg_advisory_lock($1::int8)', [key]);
      const [result] = await applyRecommendations(client, [orders]);
      expect(result).toMatchObject({ status: 'locked', indexName: 'orders_customer_id_idx' });
      expect((await indexesOf('orders')).map((i) => i.name)).toEqual(['orders_pkey']);
      await other.query('SELECT pg_advisory_unlock($1::int8)', [key]);
    } finally {
      await other.end();
    }
  });

  it('dry run checks and returns the statement without building', async () => {
    const [result] = await applyRecommendations(client, [orders], { dryRun: true });
    expect(result).toMatchObject({ status: 'dry-run', sql: orders.sql });
    expect(await indexesOf('orders')).toHaveLength(1);
  });

  it('leaves recommendations under the threshold alone', async () => {
    const [result] = await applyRecommendations(client, [{ ...orders, priority: 3 }]);
    expect(result?.status).toBe('below-threshold');
  });

  it('builds a valid index, releases its lock, and a second apply is a no-op', async () => {
    const [result] = await applyRecommendations(client, [orders], {
      lockTimeoutMs: 5000,
      statementTimeoutMs: 120_000,
    });
    expect(result).toMatchObject({
      status: 'created',
      indexName: 'orders_customer_id_idx',
      sql: orders.sql,
    });
    expect(await indexesOf('orders')).toContainEqual({
      name: 'orders_customer_id_idx',
      valid: true,
      columns: ['customer_id'],
      predicate: null,
    });
    const locks = await client.query(
      "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    );
    expect(locks.rows[0].n).toBe(0);
    // The session's timeouts are back to what they were.
    const settings = await client.query(
      "SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s",
    );
    expect(settings.rows[0]).toEqual({ l: '0', s: '0' });
    const [again] = await applyRecommendations(client, [orders]);
    expect(again).toMatchObject({ status: 'exists', indexName: 'orders_customer_id_idx' });
    const report = await adviseIndexes(client, { tables: ['orders'] });
    expect(report.recommendations).toEqual([]);
  });

  it('rebuilds the statement from the catalog and never runs text from the recommendation', async () => {
    const tampered: IndexRecommendation = {
      ...(await recommendationFor('SELECT * FROM tickets WHERE assignee = 7')),
      sql: 'DROP TABLE canary',
      name: 'x"; DROP TABLE canary; --',
    };
    const results = await applyRecommendations(client, [
      { ...tampered, predicate: { column: 'status', value: "x'); DROP TABLE canary; --" } },
      tampered,
      { ...tampered, table: 'no_such_table' },
      { ...tampered, columns: ['assignee"); DROP TABLE canary; --'] },
      { ...tampered, where: '1 = 1; DROP TABLE canary' },
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'created',
      'created',
      'skipped',
      'skipped',
      'skipped',
    ]);
    expect(results[1]).toMatchObject({
      indexName: 'tickets_assignee_idx',
      sql: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "tickets_assignee_idx" ON "public"."tickets" USING btree ("assignee")',
    });
    expect(results[4]?.reason).toMatch(/free SQL is never run/);
    // The hostile constant became one quoted literal of a partial index.
    const partial = (await indexesOf('tickets')).find((i) => i.predicate !== null);
    expect(partial?.predicate).toBe(`(status = 'x''); DROP TABLE canary; --'::text)`);
    expect(await canaryExists()).toBe(true);
  });

  it('builds a partial index from an unredacted plan, then sees it as existing', async () => {
    for (const index of await indexesOf('tickets')) {
      if (index.name !== 'tickets_pkey')
        await client.query(`DROP INDEX "${index.name.replaceAll('"', '""')}"`);
    }
    const rec = await recommendationFor(
      "SELECT * FROM tickets WHERE status = 'open' AND assignee = 7",
      false,
    );
    expect(rec).toMatchObject({ columns: ['assignee'], where: `"status" = 'open'` });
    const [built] = await applyRecommendations(client, [rec]);
    expect(built).toMatchObject({ status: 'created', indexName: rec.name });
    expect((await indexesOf('tickets')).find((i) => i.name === rec.name)).toMatchObject({
      valid: true,
      columns: ['assignee'],
      predicate: "(status = 'open'::text)",
    });
    const [again] = await applyRecommendations(client, [rec]);
    expect(again).toMatchObject({ status: 'exists', indexName: rec.name });
  });

  it('works with a pg.Pool (one connection checked out for the batch)', async () => {
    const pool = new pg.Pool({ connectionString: sandbox.primary.url, max: 3 });
    pool.on('error', () => {});
    try {
      const rec = await recommendationFor(
        'SELECT * FROM "My ""Schema"""."Weird ""Name""" WHERE "Cust""Id" = 42',
      );
      const [result] = await applyRecommendations(pool, [rec]);
      expect(result).toMatchObject({ status: 'created', indexName: 'Weird "Name"_Cust"Id_idx' });
      expect(await indexesOf('"My ""Schema"""."Weird ""Name"""')).toEqual([
        { name: 'Weird "Name"_Cust"Id_idx', valid: true, columns: ['Cust"Id'], predicate: null },
      ]);
      expect(pool.idleCount).toBe(pool.totalCount);
    } finally {
      await pool.end();
    }
    expect(await canaryExists()).toBe(true);
  });

  it('indexes a partitioned table: ON ONLY, a concurrent build per partition, attached', async () => {
    const report = await adviseIndexes(client, { tables: ['measurements'] });
    const rec = report.recommendations.find((r) => r.table === 'measurements');
    expect(rec).toMatchObject({
      source: 'foreign-key',
      partitioned: true,
      sql: 'CREATE INDEX IF NOT EXISTS "measurements_device_id_idx" ON ONLY "public"."measurements" USING btree ("device_id")',
    });
    const [result] = await applyRecommendations(client, [{ ...rec!, priority: 5 }]);
    expect(result).toMatchObject({ status: 'created', indexName: 'measurements_device_id_idx' });
    expect((await indexesOf('measurements'))[0]).toMatchObject({
      name: 'measurements_device_id_idx',
      valid: true,
    });
    for (const leaf of ['m2024', 'm2025_0', 'm2025_1']) {
      const [index] = await indexesOf(leaf);
      expect(index).toMatchObject({ valid: true, columns: ['device_id'] });
      const attached = await client.query(
        'SELECT relispartition AS p FROM pg_class WHERE oid = to_regclass($1)',
        [index!.name],
      );
      expect(attached.rows[0].p).toBe(true);
    }
    const [again] = await applyRecommendations(client, [{ ...rec!, priority: 5 }]);
    expect(again?.status).toBe('exists');
    const after = await adviseIndexes(client, { tables: ['measurements'] });
    expect(after.foreignKeysWithoutIndex).toEqual([]);
  });

  it('a build that times out is reported, and the next run clears its leftover and builds', async () => {
    const rec: IndexRecommendation = {
      schema: 'public',
      table: 'busy',
      columns: ['v'],
      name: 'busy_v_idx',
      reason: 'test',
      priority: 5,
      sql: '',
      source: 'slow-query',
    };
    const other = await sandbox.connect('primary');
    try {
      // An open writing transaction: the build's wait for it runs into lock_timeout.
      await other.query('BEGIN');
      await other.query('INSERT INTO busy VALUES (0, 0)');
      const [failed] = await applyRecommendations(client, [rec], { lockTimeoutMs: 100 });
      expect(failed).toMatchObject({ status: 'failed', indexName: 'busy_v_idx' });
      expect(failed?.error).toMatchObject({ code: 'PGPULSE_INDEX_DDL', sqlState: '55P03' });
      // DROP INDEX CONCURRENTLY waits for the same transaction: the leftover stays for now.
      expect(failed?.reason).toMatch(/could not be dropped yet/);
      expect(await indexesOf('busy')).toMatchObject([{ name: 'busy_v_idx', valid: false }]);
    } finally {
      await other.query('ROLLBACK');
      await other.end();
    }
    const [done] = await applyRecommendations(client, [rec]);
    expect(done).toMatchObject({ status: 'created', indexName: 'busy_v_idx' });
    expect(await indexesOf('busy')).toEqual([
      { name: 'busy_v_idx', valid: true, columns: ['v'], predicate: null },
    ]);
    const settings = await client.query("SELECT current_setting('lock_timeout') AS l");
    expect(settings.rows[0].l).toBe('0');
  });

  it('completes a partitioned build a previous run left half-way', async () => {
    const rec: IndexRecommendation = {
      schema: 'public',
      table: 'readings',
      columns: ['device_id'],
      name: 'readings_device_id_idx',
      reason: 'test',
      priority: 5,
      sql: '',
      source: 'slow-query',
    };
    const [result] = await applyRecommendations(client, [rec]);
    expect(result).toMatchObject({ status: 'created', indexName: 'readings_device_id_idx' });
    expect(await indexesOf('readings')).toMatchObject([
      { name: 'readings_device_id_idx', valid: true },
    ]);
    // The partition index built earlier was attached, not built a second time.
    expect((await indexesOf('r1')).map((i) => i.name)).toEqual(['r1_device_id_idx']);
    expect(await indexesOf('r2')).toMatchObject([{ name: 'r2_device_id_idx', valid: true }]);
  });
});

describe('rebuildIndex and dropIndex', () => {
  it('rebuilds a bloated index concurrently', async () => {
    const before = await adviseIndexes(client, { tables: ['bloaty'] });
    expect(before.bloated.map((b) => b.name)).toEqual(['bloaty_id']);
    const result = await rebuildIndex(client, 'public', 'bloaty_id');
    expect(result).toMatchObject({
      status: 'rebuilt',
      sql: 'REINDEX INDEX CONCURRENTLY "public"."bloaty_id"',
    });
    const after = await adviseIndexes(client, { tables: ['bloaty'], bloatMinSizeBytes: 0 });
    expect(after.bloated).toEqual([]);
  });

  it('a failed rebuild drops the copy it leaves and withholds values from the error', async () => {
    const failed = await rebuildIndex(client, 'public', 'inv2_expr');
    expect(failed.status).toBe('failed');
    expect(failed.error?.message).toContain('22012');
    expect((await indexesOf('inv2')).map((i) => i.name)).toEqual(['inv2_expr']);
    await client.query('DELETE FROM inv2 WHERE a = 1');
    expect((await rebuildIndex(client, 'public', 'inv2_expr')).status).toBe('rebuilt');
    expect(await indexesOf('inv2')).toEqual([
      { name: 'inv2_expr', valid: true, columns: [], predicate: null },
    ]);
  });

  it('reports missing and locked without touching anything', async () => {
    expect((await rebuildIndex(client, 'public', 'nope')).status).toBe('missing');
    expect((await rebuildIndex(client, 'public', 'bloaty_id"; DROP TABLE canary; --')).status).toBe(
      'missing',
    );
    const other = await sandbox.connect('primary');
    try {
      const key = indexLockKey('public', 'bloaty').toString();
      await other.query('SELECT pg_advisory_lock($1::int8)', [key]);
      expect((await rebuildIndex(client, 'public', 'bloaty_id')).status).toBe('locked');
      expect((await dropIndex(client, 'public', 'bloaty_id')).status).toBe('locked');
    } finally {
      await other.end();
    }
    expect(await canaryExists()).toBe(true);
  });

  it('drops a duplicate, refuses a primary key', async () => {
    const report = await adviseIndexes(client, { tables: ['dup'] });
    const [duplicate] = report.duplicates;
    expect(duplicate?.name).toBe('dup_a');
    expect(await dropIndex(client, 'public', 'dup_a')).toMatchObject({
      status: 'dropped',
      sql: duplicate?.sql,
    });
    expect((await indexesOf('dup')).map((i) => i.name)).toEqual(['dup_a_b']);
    expect((await dropIndex(client, 'public', 'orders_pkey')).status).toBe('refused');
  });
});
