import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExplainError, PgPulseError } from '../errors/index.js';
import { analyzeQuery } from './analyze-query.js';

let sandbox: SandboxCluster;
let client: pg.Client;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 0 });
  client = await sandbox.connect('primary');
  await client.query(
    `CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int, amount numeric(10,2) NOT NULL,
       created_at timestamptz NOT NULL DEFAULT now());
     INSERT INTO orders (customer_id, amount)
       SELECT (g % 5000) + 1, (g % 1000) / 10.0 FROM generate_series(1, 200000) g;
     CREATE TABLE customers (id int PRIMARY KEY, ref int);
     INSERT INTO customers SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE g END
       FROM generate_series(1, 10000) g;
     CREATE TABLE "Order Items" ("Customer Id" int, "qty" int);
     INSERT INTO "Order Items" SELECT g % 3000, 1 FROM generate_series(1, 60000) g;
     CREATE TABLE stale (id int, v int) WITH (autovacuum_enabled = false);
     INSERT INTO stale SELECT g, g % 100 FROM generate_series(1, 20000) g;
     CREATE TABLE side_effects (n int);
     CREATE FUNCTION note_call() RETURNS int LANGUAGE plpgsql VOLATILE AS
       $$ BEGIN INSERT INTO side_effects VALUES (1); RETURN 1; END $$;
     ANALYZE;`,
  );
}, 120_000);

afterAll(async () => {
  await client?.end();
  await sandbox?.stop();
});

async function rowsOfCustomer7(): Promise<unknown[]> {
  const result = await client.query(
    'SELECT id, amount::text, xmin::text FROM orders WHERE customer_id = 7 ORDER BY id',
  );
  return result.rows;
}

describe('analyzeQuery against the sandbox', () => {
  it('finds the seq scan and proposes a checked, quoted index on customer_id (priority >= 4)', async () => {
    const analysis = await analyzeQuery(client, 'SELECT * FROM orders WHERE customer_id = 42');
    expect(analysis.executionPlan.mode).toBe('analyze');
    expect(analysis.executionPlan.cost).toBeGreaterThan(1000);
    expect(analysis.executionPlan.executionTimeMs).toBeGreaterThan(0);
    expect(analysis.findings.find((f) => f.kind === 'seq-scan')).toMatchObject({
      relation: 'orders',
      columns: ['customer_id'],
      severity: 'critical',
    });
    const [top] = analysis.suggestions;
    expect(top).toMatchObject({
      kind: 'index',
      relation: 'public.orders',
      columns: ['customer_id'],
      sql: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "orders_customer_id_idx" ON "public"."orders" USING btree ("customer_id")',
    });
    expect(top?.priority).toBeGreaterThanOrEqual(4);
    expect(top?.description).toContain('customer_id');
    expect(analysis.optimizedQuery).toBeUndefined();
  });

  it('uses bound values for the plan but never shows them', async () => {
    const analysis = await analyzeQuery(
      client,
      'SELECT * FROM orders WHERE customer_id = $1',
      [987_654],
    );
    expect(analysis.executionPlan.mode).toBe('analyze');
    expect(JSON.stringify(analysis)).not.toContain('987654');
    expect(analysis.suggestions[0]).toMatchObject({ kind: 'index', columns: ['customer_id'] });
  });

  it('takes a generic plan for $n text without values', async () => {
    const analysis = await analyzeQuery(client, 'SELECT * FROM orders WHERE customer_id = $1');
    expect(analysis.executionPlan.mode).toBe('generic');
    expect(analysis.suggestions[0]).toMatchObject({ kind: 'index', columns: ['customer_id'] });
    expect(analysis.suggestions[0]?.priority).toBeGreaterThanOrEqual(4);
  });

  it('explains a write without executing it (rows and xmin unchanged)', async () => {
    const before = await rowsOfCustomer7();
    const analysis = await analyzeQuery(
      client,
      'UPDATE orders SET amount = amount + 1 WHERE customer_id = 7',
    );
    expect(analysis.executionPlan.mode).toBe('explain');
    expect(analysis.executionPlan.plan['Node Type']).toBe('ModifyTable');
    expect(analysis.executionPlan.plan['Actual Rows']).toBeUndefined();
    expect(analysis.executionPlan.executionTimeMs).toBeUndefined();
    expect(analysis.findings.find((f) => f.kind === 'seq-scan')?.columns).toEqual(['customer_id']);
    expect(analysis.suggestions[0]).toMatchObject({ kind: 'index', columns: ['customer_id'] });
    expect(await rowsOfCustomer7()).toEqual(before);
  });

  it('does not analyze a read calling a volatile user function', async () => {
    const analysis = await analyzeQuery(client, 'SELECT note_call() FROM orders LIMIT 1');
    expect(analysis.executionPlan.mode).toBe('explain');
    const effects = await client.query('SELECT count(*)::int AS n FROM side_effects');
    expect(effects.rows).toEqual([{ n: 0 }]);
  });

  it('leaves NOT IN over a nullable column alone (no optimizedQuery)', async () => {
    // customers.ref holds NULLs: NOT IN and NOT EXISTS really differ here.
    const notIn = 'SELECT count(*) FROM customers WHERE ref NOT IN (SELECT id FROM orders)';
    const notExists =
      'SELECT count(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = c.ref)';
    const [a, b] = await Promise.all([client.query(notIn), client.query(notExists)]);
    expect(a.rows[0]).not.toEqual(b.rows[0]);

    const outer = await analyzeQuery(client, notIn, undefined, { analyze: false });
    expect(outer.optimizedQuery).toBeUndefined();
    expect(outer.suggestions.find((s) => s.kind === 'rewrite')).toMatchObject({ priority: 2 });
    expect(outer.suggestions.find((s) => s.kind === 'rewrite')?.description).toContain(
      'customers.ref',
    );

    // The subquery side nullable (orders.customer_id has no NOT NULL constraint).
    const inner = await analyzeQuery(
      client,
      'SELECT * FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)',
      undefined,
      { analyze: false },
    );
    expect(inner.optimizedQuery).toBeUndefined();
    expect(inner.suggestions.find((s) => s.kind === 'rewrite')?.description).toContain(
      'orders.customer_id',
    );
  });

  it('rewrites NOT IN over NOT NULL columns to NOT EXISTS, cheaper and with the same rows', async () => {
    const sql =
      'SELECT c.id FROM customers c WHERE c.id NOT IN (SELECT o.id FROM orders o WHERE o.amount > $1)';
    const analysis = await analyzeQuery(client, sql, [50]);
    expect(analysis.optimizedQuery).toBe(
      'SELECT c.id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE ' +
        '(o.amount > $1) AND "c"."id" = "o"."id")',
    );
    expect(analysis.optimizedCost).toBeLessThan(analysis.executionPlan.cost * 0.9);
    expect(analysis.suggestions.find((s) => s.kind === 'rewrite')?.priority).toBeGreaterThanOrEqual(
      4,
    );
    const sorted = (rows: { id: number }[]) => rows.map((r) => r.id).sort((x, y) => x - y);
    const [before, after] = await Promise.all([
      client.query<{ id: number }>(sql, [50]),
      client.query<{ id: number }>(analysis.optimizedQuery!, [50]),
    ]);
    expect(sorted(after.rows)).toEqual(sorted(before.rows));
    expect(before.rows.length).toBeGreaterThan(0);
  });

  it('quotes identifiers taken from the catalog, and the DDL it proposes works', async () => {
    const sql = 'SELECT * FROM "Order Items" WHERE "Customer Id" = 5';
    const analysis = await analyzeQuery(client, sql);
    const index = analysis.suggestions.find((s) => s.kind === 'index');
    expect(index).toMatchObject({
      sql: 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Order Items_Customer Id_idx" ON "public"."Order Items" USING btree ("Customer Id")',
      columns: ['Customer Id'],
      priority: 4,
    });
    await client.query(index!.sql!);
    try {
      await client.query('ANALYZE "Order Items"');
      const again = await analyzeQuery(client, sql);
      expect(again.suggestions.filter((s) => s.kind === 'index')).toEqual([]);
      expect(again.findings.filter((f) => f.kind === 'seq-scan')).toEqual([]);
    } finally {
      await client.query('DROP INDEX IF EXISTS "Order Items_Customer Id_idx"');
    }
  });

  it('suggests ANALYZE for a table changed heavily since its statistics were gathered', async () => {
    await client.query('INSERT INTO stale SELECT g, 5 FROM generate_series(1, 50000) g');
    await client.query('SELECT pg_stat_force_next_flush()');
    await client.query('SELECT 1');
    await expect
      .poll(
        async () =>
          (
            await client.query(
              "SELECT n_mod_since_analyze::int AS n FROM pg_stat_user_tables WHERE relname = 'stale'",
            )
          ).rows[0]?.n,
        { timeout: 10_000 },
      )
      .toBeGreaterThan(40_000);
    const analysis = await analyzeQuery(client, 'SELECT * FROM stale WHERE v = 5');
    expect(analysis.suggestions).toContainEqual(
      expect.objectContaining({ kind: 'statistics', sql: 'ANALYZE "public"."stale"' }),
    );
    // The planner still believes 20 000 rows with 200 matches: a misestimate too.
    expect(analysis.findings.some((f) => f.kind === 'row-estimate')).toBe(true);
  });

  it('refuses a connection inside a transaction, leaving that transaction alone', async () => {
    await client.query('BEGIN');
    try {
      await client.query('CREATE TEMP TABLE mine (a int)');
      await expect(analyzeQuery(client, 'SELECT 1')).rejects.toMatchObject({
        code: 'PGPULSE_ANALYZE_IN_TRANSACTION',
      });
      await client.query('SELECT * FROM mine');
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('rejects what has no plan, and never puts a bound value in an error', async () => {
    await expect(analyzeQuery(client, 'CREATE TABLE x (a int)')).rejects.toBeInstanceOf(
      ExplainError,
    );
    await expect(analyzeQuery(client, 'SELECT 1; SELECT 2')).rejects.toBeInstanceOf(PgPulseError);
    const failure = await analyzeQuery(client, 'SELECT * FROM orders WHERE customer_id = $1', [
      'hunter2-param',
    ]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ExplainError);
    expect((failure as ExplainError).sqlState).toBe('22P02');
    expect(String((failure as Error).message)).not.toContain('hunter2');
    expect((failure as Error).cause).toBeUndefined();
    // A literal in the text is quoted by the server just the same.
    const literal = await analyzeQuery(
      client,
      "SELECT * FROM orders WHERE customer_id = 'hunter2-literal'",
    ).catch((error: unknown) => error);
    expect((literal as ExplainError).sqlState).toBe('22P02');
    expect(
      JSON.stringify({ m: (literal as Error).message, c: (literal as Error).cause }),
    ).not.toContain('hunter2');
    await expect(analyzeQuery(client, 'SELECT * FROM no_such_table')).rejects.toThrow(
      /no_such_table/,
    );
    // The connection is still usable and outside any transaction.
    const after = await client.query('SELECT now() = statement_timestamp() AS idle');
    expect(after.rows).toEqual([{ idle: true }]);
  });
});
