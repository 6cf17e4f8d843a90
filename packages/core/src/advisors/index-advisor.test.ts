import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExplainJson } from '../analysis/plan.js';
import { analyzePlan, type PlanFinding } from '../analysis/plan-analyzer.js';
import { redactPlan } from '../analysis/redact-plan.js';
import { ConfigError } from '../errors/index.js';
import { adviseIndexes, type IndexReport } from './index.js';

let sandbox: SandboxCluster;
let client: pg.Client;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 0 });
  client = await sandbox.connect('primary');
  await client.query(`
    CREATE EXTENSION pgstattuple;

    CREATE TABLE dup (a int, b int, c int);
    CREATE INDEX dup_a ON dup (a);
    CREATE INDEX dup_a_b ON dup (a, b);
    CREATE INDEX dup_c_positive ON dup (c) WHERE c > 0;
    CREATE INDEX dup_c_a ON dup (c, a);
    CREATE INDEX dup_abs_b ON dup (abs(b));
    CREATE INDEX dup_abs_b_c ON dup (abs(b), c);
    CREATE INDEX dup_b_hash ON dup USING hash (b);
    CREATE INDEX dup_b_c ON dup (b, c);

    CREATE TABLE uniq (id int PRIMARY KEY, a int, b int);
    CREATE UNIQUE INDEX uniq_a ON uniq (a);
    CREATE INDEX uniq_a_b ON uniq (a, b);
    CREATE UNIQUE INDEX uniq_id_copy ON uniq (id);
    CREATE UNIQUE INDEX uniq_b_1 ON uniq (b);
    CREATE UNIQUE INDEX uniq_b_2 ON uniq (b);

    CREATE TABLE usage (id int, v int);
    INSERT INTO usage SELECT g, g % 10 FROM generate_series(1, 1000) g;
    CREATE INDEX usage_v_unused ON usage (v);
    CREATE INDEX usage_id_used ON usage (id);

    CREATE TABLE inv (a int);
    INSERT INTO inv VALUES (1), (1);
    CREATE TABLE inv2 (a int);
    INSERT INTO inv2 VALUES (1), (2);

    CREATE TABLE customers (id int PRIMARY KEY);
    CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int, note text);
    INSERT INTO orders (customer_id, note)
      SELECT (g % 5000) + 1, 'n' FROM generate_series(1, 200000) g;
    CREATE TABLE order_items (id serial PRIMARY KEY, order_id bigint REFERENCES orders (id), sku int);
    CREATE TABLE payments (id serial PRIMARY KEY, order_id bigint REFERENCES orders (id));
    CREATE INDEX payments_order_id ON payments (order_id);
    CREATE TABLE pairs (a int, b int, PRIMARY KEY (a, b));
    CREATE TABLE pair_refs (x int, y int, FOREIGN KEY (x, y) REFERENCES pairs (a, b));
    CREATE INDEX pair_refs_y_x ON pair_refs (y, x);

    CREATE TABLE tickets (id serial PRIMARY KEY, status text NOT NULL, assignee int);
    INSERT INTO tickets (status, assignee)
      SELECT CASE WHEN g % 20 = 0 THEN 'open' WHEN g % 2 = 0 THEN 'closed' ELSE 'done' END,
             g % 3000
        FROM generate_series(1, 200000) g;

    CREATE TABLE bloaty (id int);
    INSERT INTO bloaty SELECT g FROM generate_series(1, 200000) g;
    CREATE INDEX bloaty_id ON bloaty (id);
    CREATE TABLE fresh (id int);
    INSERT INTO fresh SELECT g FROM generate_series(1, 200000) g;
    CREATE INDEX fresh_id ON fresh (id);
    DELETE FROM bloaty WHERE id % 10 <> 0;

    CREATE SCHEMA "My ""Schema""";
    CREATE TABLE "My ""Schema"""."Weird ""Name""" ("Cust""Id" int, "Note" text);
    INSERT INTO "My ""Schema"""."Weird ""Name"""
      SELECT g % 4000, 'x' FROM generate_series(1, 200000) g;
    CREATE TABLE "x""; DROP TABLE canary; --" (id serial, order_id bigint REFERENCES orders (id));
    CREATE TABLE canary (x int);
  `);
  // Failed concurrent builds leave invalid indexes: duplicate keys, a division by zero.
  await expect(
    client.query('CREATE UNIQUE INDEX CONCURRENTLY inv_a_key ON inv (a)'),
  ).rejects.toThrow();
  await expect(
    client.query('CREATE INDEX CONCURRENTLY inv2_expr ON inv2 ((10 / (a - 1)))'),
  ).rejects.toThrow();
  await client.query('VACUUM ANALYZE');
  // One index scan of usage_id_used, flushed to the shared statistics before the next reply.
  await client.query('SET enable_seqscan = off');
  await client.query('SELECT * FROM usage WHERE id = 5');
  await client.query('RESET enable_seqscan');
  await client.query('SELECT pg_stat_force_next_flush()');
}, 120_000);

afterAll(async () => {
  await client?.end();
  await sandbox?.stop();
});

async function findingsOf(
  sql: string,
  redact = true,
): Promise<{
  findings: PlanFinding[];
  plan: ReturnType<typeof parseExplainJson>;
}> {
  const result = await client.query(`EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) ${sql}`);
  const raw = parseExplainJson(result.rows);
  const plan = redact ? redactPlan(raw) : raw;
  return { findings: analyzePlan(plan), plan };
}

describe('adviseIndexes against the sandbox', () => {
  let report: IndexReport;

  beforeAll(async () => {
    report = await adviseIndexes(client);
  });

  it('reports a prefix duplicate (a) of (a, b), with a quoted DROP INDEX CONCURRENTLY', () => {
    const dup = report.duplicates.find((d) => d.name === 'dup_a');
    expect(dup).toMatchObject({
      schema: 'public',
      table: 'dup',
      columns: ['a'],
      coveredBy: { name: 'dup_a_b', columns: ['a', 'b'] },
      sql: 'DROP INDEX CONCURRENTLY IF EXISTS "public"."dup_a"',
    });
    // Same expression leading: a duplicate too.
    expect(report.duplicates.find((d) => d.name === 'dup_abs_b')?.coveredBy.name).toBe(
      'dup_abs_b_c',
    );
  });

  it('does not report across predicates or access methods', () => {
    const names = report.duplicates.map((d) => d.name);
    expect(names).not.toContain('dup_c_positive');
    expect(names).not.toContain('dup_b_hash');
    expect(names).not.toContain('dup_a_b');
  });

  it('never suggests dropping a unique index for a longer non-unique one, nor a primary key', () => {
    const names = report.duplicates.map((d) => d.name);
    expect(names).not.toContain('uniq_a');
    expect(names).not.toContain('uniq_pkey');
    // Identical unique indexes: the copy of the primary key and the later of a pair go.
    expect(names).toContain('uniq_id_copy');
    expect(report.duplicates.find((d) => d.name === 'uniq_id_copy')?.coveredBy).toMatchObject({
      name: 'uniq_pkey',
      primary: true,
    });
    expect(names).toContain('uniq_b_2');
    expect(names).not.toContain('uniq_b_1');
  });

  it('lists an index never scanned as unused, not one that was, nor unique or PK indexes', () => {
    const names = report.unused.map((u) => u.name);
    expect(names).toContain('usage_v_unused');
    expect(names).not.toContain('usage_id_used');
    expect(names).not.toContain('uniq_a');
    expect(names).not.toContain('orders_pkey');
    expect(report.unused.find((u) => u.name === 'usage_v_unused')).toMatchObject({
      scans: 0,
      sql: 'DROP INDEX CONCURRENTLY IF EXISTS "public"."usage_v_unused"',
    });
    expect(report.note).toMatch(/per node/);
    expect(report.note).toMatch(/primary/);
    expect(report.note).toMatch(/replica/);
  });

  it('honours unusedMinSizeBytes', async () => {
    const big = await adviseIndexes(client, { tables: ['usage'], unusedMinSizeBytes: 1 << 30 });
    expect(big.unused).toEqual([]);
  });

  it('reports invalid indexes left by failed concurrent builds', () => {
    expect(report.invalid.find((i) => i.name === 'inv_a_key')).toMatchObject({
      table: 'inv',
      unique: true,
      action: 'drop',
      sql: 'DROP INDEX CONCURRENTLY IF EXISTS "public"."inv_a_key"',
      reindexSql: 'REINDEX INDEX CONCURRENTLY "public"."inv_a_key"',
    });
    expect(report.invalid.find((i) => i.name === 'inv2_expr')).toMatchObject({
      action: 'reindex',
      sql: 'REINDEX INDEX CONCURRENTLY "public"."inv2_expr"',
    });
    // Invalid indexes are never duplicates or unused candidates.
    expect(report.unused.map((u) => u.name)).not.toContain('inv2_expr');
  });

  it('recommends an index for a foreign key no index serves', () => {
    const gap = report.foreignKeysWithoutIndex.find((g) => g.table === 'order_items');
    expect(gap).toMatchObject({
      constraint: 'order_items_order_id_fkey',
      columns: ['order_id'],
      referencedTable: 'orders',
      sql: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "order_items_order_id_idx" ON "public"."order_items" USING btree ("order_id")',
    });
    const rec = report.recommendations.find((r) => r.table === 'order_items');
    expect(rec).toMatchObject({ source: 'foreign-key', columns: ['order_id'], sql: gap?.sql });
    const tables = report.foreignKeysWithoutIndex.map((g) => g.table);
    expect(tables).not.toContain('payments');
    // (y, x) leads with the key's columns in another order: it serves (x, y).
    expect(tables).not.toContain('pair_refs');
  });

  it('quotes hostile names instead of running them', () => {
    const gap = report.foreignKeysWithoutIndex.find((g) => g.table.startsWith('x"'));
    expect(gap?.sql).toBe(
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS "x""; DROP TABLE canary; --_order_id_idx" ' +
        'ON "public"."x""; DROP TABLE canary; --" USING btree ("order_id")',
    );
  });

  it('measures bloat with pgstattuple after 90% of rows are deleted', () => {
    const bloated = report.bloated.find((b) => b.name === 'bloaty_id');
    expect(report.bloatMethod).toBe('pgstattuple');
    expect(bloated).toMatchObject({
      table: 'bloaty',
      estimated: false,
      method: 'pgstattuple',
      sql: 'REINDEX INDEX CONCURRENTLY "public"."bloaty_id"',
    });
    expect(bloated?.bloatPercent).toBeGreaterThan(80);
    expect(report.bloated.map((b) => b.name)).not.toContain('fresh_id');
  });

  it('estimates bloat from statistics without pgstattuple, marked estimated', async () => {
    const estimated = await adviseIndexes(client, { bloatMethod: 'estimate' });
    expect(estimated.bloatMethod).toBe('estimate');
    const bloated = estimated.bloated.find((b) => b.name === 'bloaty_id');
    expect(bloated).toMatchObject({ estimated: true, method: 'estimate' });
    expect(bloated?.bloatPercent).toBeGreaterThan(80);
    expect(estimated.bloated.map((b) => b.name)).not.toContain('fresh_id');
    const strict = await adviseIndexes(client, { tables: ['bloaty'], bloatThresholdPercent: 99.9 });
    expect(strict.bloated).toEqual([]);
  });

  it('turns a seq-scan finding on orders.customer_id into a priority >= 4 index', async () => {
    const { findings, plan } = await findingsOf('SELECT * FROM orders WHERE customer_id = 42');
    expect(findings.find((f) => f.kind === 'seq-scan')).toMatchObject({
      relation: 'orders',
      columns: ['customer_id'],
    });
    const advice = await adviseIndexes(client, {
      tables: ['orders'],
      slowQueries: [
        {
          query: 'SELECT * FROM orders WHERE customer_id = $1',
          calls: 500,
          totalMs: 25_000,
          plan: { findings, plan },
        },
        { query: 'SELECT 1', calls: 10, totalMs: 5 },
      ],
    });
    const rec = advice.recommendations.find((r) => r.source === 'slow-query');
    expect(rec).toMatchObject({
      schema: 'public',
      table: 'orders',
      columns: ['customer_id'],
      name: 'orders_customer_id_idx',
      sql: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "orders_customer_id_idx" ON "public"."orders" USING btree ("customer_id")',
      queries: ['SELECT * FROM orders WHERE customer_id = $1'],
    });
    expect(rec?.priority).toBeGreaterThanOrEqual(4);
    expect(rec?.where).toBeUndefined();
    expect(rec?.estimatedBenefit).toContain('200,000');
    expect(JSON.stringify(advice)).not.toContain('= 42');
  });

  it('folds a recommendation into a longer one that leads with its columns', async () => {
    const one = await findingsOf('SELECT * FROM orders WHERE customer_id = 42');
    const two = await findingsOf("SELECT * FROM orders WHERE customer_id = 42 AND note = 'x'");
    const advice = await adviseIndexes(client, {
      tables: ['orders'],
      slowQueries: [
        { query: 'SELECT * FROM orders WHERE customer_id = $1', calls: 5, totalMs: 100, plan: one },
        {
          query: 'SELECT * FROM orders WHERE customer_id = $1 AND note = $2',
          calls: 7,
          totalMs: 200,
          plan: two,
        },
      ],
    });
    const recs = advice.recommendations.filter((r) => r.source === 'slow-query');
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ columns: ['customer_id', 'note'] });
    expect(recs[0]?.queries).toHaveLength(2);
    expect(recs[0]?.estimatedBenefit).toContain('12 calls');
  });

  it('weights priority by the statements\u2019 share of slow-query time', async () => {
    const { findings } = await findingsOf('SELECT * FROM orders WHERE customer_id = 42');
    const advice = await adviseIndexes(client, {
      tables: ['orders'],
      slowQueries: [
        { query: 'q1', calls: 1, totalMs: 10, plan: { findings } },
        { query: 'q2', calls: 100_000, totalMs: 10_000_000 },
      ],
    });
    const rec = advice.recommendations.find((r) => r.source === 'slow-query');
    expect(rec?.priority).toBe(3);
  });

  it('proposes a partial index for a constant on a low-cardinality column (unredacted plan)', async () => {
    const sql = "SELECT * FROM tickets WHERE status = 'open' AND assignee = 7";
    const raw = await findingsOf(sql, false);
    const advice = await adviseIndexes(client, {
      tables: ['tickets'],
      slowQueries: [{ query: sql, calls: 50, totalMs: 3000, plan: raw }],
    });
    const rec = advice.recommendations.find((r) => r.source === 'slow-query');
    expect(rec).toMatchObject({
      columns: ['assignee'],
      where: `"status" = 'open'`,
      predicate: { column: 'status', value: 'open' },
      // The statement text is normalized: its constants never reach the report.
      queries: ['SELECT * FROM tickets WHERE status = $1 AND assignee = $2'],
    });
    expect(rec?.sql).toMatch(
      /^CREATE INDEX CONCURRENTLY IF NOT EXISTS "tickets_assignee_[0-9a-f]{8}_idx" ON "public"."tickets" USING btree \("assignee"\) WHERE \("status" = 'open'\)$/,
    );
    // A redacted plan has no constants: a plain index on both equality columns.
    const redacted = await findingsOf(sql, true);
    const plain = await adviseIndexes(client, {
      tables: ['tickets'],
      slowQueries: [{ query: sql, calls: 50, totalMs: 3000, plan: redacted }],
    });
    expect(plain.recommendations.find((r) => r.source === 'slow-query')).toMatchObject({
      columns: ['status', 'assignee'],
    });
    expect(plain.recommendations[0]?.where).toBeUndefined();
  });

  it('never makes a partial index on a high-cardinality column', async () => {
    const raw = await findingsOf('SELECT * FROM tickets WHERE assignee = 7', false);
    const advice = await adviseIndexes(client, {
      tables: ['tickets'],
      slowQueries: [{ query: 'q', calls: 5, totalMs: 100, plan: raw }],
    });
    const rec = advice.recommendations.find((r) => r.source === 'slow-query');
    expect(rec).toMatchObject({ columns: ['assignee'] });
    expect(rec?.where).toBeUndefined();
  });

  it('handles quoted, mixed-case schema, table and column names', async () => {
    const { findings } = await findingsOf(
      'SELECT * FROM "My ""Schema"""."Weird ""Name""" WHERE "Cust""Id" = 42',
    );
    expect(findings.find((f) => f.kind === 'seq-scan')).toMatchObject({
      relation: 'Weird "Name"',
      schema: 'My "Schema"',
      columns: ['Cust"Id'],
    });
    const advice = await adviseIndexes(client, {
      schema: 'My "Schema"',
      slowQueries: [{ query: 'q', calls: 10, totalMs: 1000, plan: { findings } }],
    });
    expect(advice.recommendations).toHaveLength(1);
    expect(advice.recommendations[0]).toMatchObject({
      schema: 'My "Schema"',
      table: 'Weird "Name"',
      columns: ['Cust"Id'],
      sql:
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Weird ""Name""_Cust""Id_idx" ' +
        'ON "My ""Schema"""."Weird ""Name""" USING btree ("Cust""Id")',
    });
  });

  it('keeps to the tables and schema asked for', async () => {
    const { findings } = await findingsOf('SELECT * FROM orders WHERE customer_id = 42');
    const other = await adviseIndexes(client, {
      tables: ['dup'],
      slowQueries: [{ query: 'q', calls: 1, totalMs: 1, plan: { findings } }],
    });
    expect(other.recommendations).toEqual([]);
    expect(other.duplicates.every((d) => d.table === 'dup')).toBe(true);
    expect(other.foreignKeysWithoutIndex).toEqual([]);
    const none = await adviseIndexes(client, { schema: 'no such schema' });
    expect(none).toMatchObject({ recommendations: [], duplicates: [], unused: [], bloated: [] });
  });

  it('ignores findings on relations it cannot find, and malformed entries', async () => {
    const ghost: PlanFinding = {
      kind: 'seq-scan',
      severity: 'critical',
      message: 'x',
      suggestion: 'y',
      relation: 'no_such_table',
      columns: ['id'],
      nodeType: 'Seq Scan',
      path: '$',
      metrics: { removedFraction: 0.99 },
      estimated: false,
    };
    const advice = await adviseIndexes(client, {
      tables: ['orders'],
      slowQueries: [
        { query: 'q', calls: Number.NaN, totalMs: -5, plan: { findings: [ghost] } },
        {
          query: 'q',
          calls: 1,
          totalMs: 1,
          plan: { findings: [{ ...ghost, relation: 'orders', columns: ['nope'] }] },
        },
      ],
    });
    expect(advice.recommendations).toEqual([]);
  });

  it('rejects bad options naming the field', async () => {
    await expect(adviseIndexes(client, { bloatThresholdPercent: 150 })).rejects.toBeInstanceOf(
      ConfigError,
    );
    await expect(adviseIndexes(client, { unusedMinSizeBytes: -1 })).rejects.toThrow(
      /unusedMinSizeBytes/,
    );
  });
});
