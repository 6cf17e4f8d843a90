import { adviseStatementIndexes, type StatementIndexAdvice } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The advisor suite (#14): dexter-style cases on an orders / customers / line_items schema,
 * each with the advice expected. Every suggested index is then built for real and the
 * statement's EXPLAIN cost must drop. Run through the estimate path (`pnpm test`, embedded
 * PostgreSQL, no HypoPG) and the HypoPG path (`pnpm test:hypopg`, Debian's PostgreSQL 15).
 */

export interface Expected {
  readonly table: string;
  /** Key columns, `col DESC` for a descending one. */
  readonly columns: readonly string[];
  readonly include?: readonly string[];
  readonly where?: string;
}

export interface AdvisorCase {
  readonly name: string;
  readonly sql: string;
  readonly params?: readonly unknown[];
  /** Empty: no index is the right advice. */
  readonly expected: readonly Expected[];
}

const SCHEMA = `
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, country text NOT NULL,
  created_at timestamptz NOT NULL);
INSERT INTO customers SELECT g, 'user' || g || '@example.com',
  (ARRAY['fr','de','us','uk','es'])[1 + g % 5], timestamptz '2024-01-01' + g * interval '17 minutes'
  FROM generate_series(1, 20000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
  status text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO orders SELECT g, 1 + (g * 7919) % 20000,
  CASE WHEN g % 100 = 0 THEN 'refunded' WHEN g % 10 < 6 THEN 'delivered'
       WHEN g % 10 < 8 THEN 'shipped' ELSE 'pending' END,
  (g % 500) + 0.99, timestamptz '2024-01-01' + g * interval '2 minutes'
  FROM generate_series(1, 200000) g;
CREATE TABLE line_items (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders,
  product_id int NOT NULL, quantity int NOT NULL, price numeric(10,2) NOT NULL);
INSERT INTO line_items SELECT g, 1 + (g::bigint * 104729) % 200000, 1 + g % 2000, 1 + g % 5, (g % 90) + 0.5
  FROM generate_series(1, 300000) g;
CREATE INDEX line_items_product_id_idx ON line_items (product_id);
CREATE SCHEMA archive;
CREATE TABLE archive.orders (id bigint PRIMARY KEY, customer_id int NOT NULL, total numeric(10,2));
INSERT INTO archive.orders SELECT g, 1 + g % 20000, g % 300 FROM generate_series(1, 100000) g;
`;

export const CASES: readonly AdvisorCase[] = [
  {
    name: 'equality',
    sql: 'SELECT * FROM orders WHERE customer_id = $1',
    params: [4242],
    expected: [{ table: 'public.orders', columns: ['customer_id'] }],
  },
  {
    name: 'IN list',
    sql: 'SELECT * FROM orders WHERE customer_id IN (11, 12, 13)',
    expected: [{ table: 'public.orders', columns: ['customer_id'] }],
  },
  {
    name: 'range',
    sql: "SELECT * FROM orders WHERE created_at BETWEEN '2024-03-01' AND '2024-03-02'",
    expected: [{ table: 'public.orders', columns: ['created_at'] }],
  },
  {
    name: 'multi-column: equality then range',
    sql: "SELECT * FROM orders WHERE customer_id = 77 AND created_at >= '2024-09-20'",
    expected: [{ table: 'public.orders', columns: ['customer_id', 'created_at'] }],
  },
  {
    name: 'ORDER BY DESC + LIMIT after equality',
    sql: 'SELECT * FROM orders WHERE customer_id = 99 ORDER BY created_at DESC LIMIT 5',
    expected: [{ table: 'public.orders', columns: ['customer_id', 'created_at DESC'] }],
  },
  {
    name: 'ORDER BY DESC + LIMIT alone',
    sql: 'SELECT * FROM orders ORDER BY created_at DESC LIMIT 20',
    expected: [{ table: 'public.orders', columns: ['created_at DESC'] }],
  },
  {
    name: 'partial: rare value, sorted',
    sql: "SELECT * FROM orders WHERE status = 'refunded' ORDER BY created_at DESC LIMIT 20",
    expected: [
      { table: 'public.orders', columns: ['created_at DESC'], where: `"status" = 'refunded'` },
    ],
  },
  {
    name: 'covered: INCLUDE for an index-only scan',
    sql: 'SELECT total FROM orders WHERE customer_id BETWEEN 100 AND 400',
    expected: [{ table: 'public.orders', columns: ['customer_id'], include: ['total'] }],
  },
  {
    name: 'join: filter on the outer side, key on the inner side',
    sql: `SELECT o.id, l.product_id, l.quantity FROM orders o JOIN line_items l ON l.order_id = o.id
           WHERE o.customer_id = 321`,
    expected: [
      { table: 'public.orders', columns: ['customer_id'] },
      { table: 'public.line_items', columns: ['order_id'] },
    ],
  },
  {
    name: 'join: customers by email, orders by key',
    sql: `SELECT c.email, o.total FROM customers c JOIN orders o ON o.customer_id = c.id
           WHERE c.email = 'user77@example.com'`,
    expected: [
      { table: 'public.customers', columns: ['email'] },
      { table: 'public.orders', columns: ['customer_id'] },
    ],
  },
  {
    name: 'low selectivity: no index',
    sql: "SELECT * FROM orders WHERE status = 'delivered'",
    expected: [],
  },
  {
    name: 'primary key: no index',
    sql: 'SELECT * FROM orders WHERE id = 12345',
    expected: [],
  },
  {
    name: 'an existing index already serves it',
    sql: 'SELECT * FROM line_items WHERE product_id = 17',
    expected: [],
  },
  {
    name: 'expression filter: no plain-column index',
    sql: "SELECT * FROM customers WHERE lower(email) = 'user5@example.com'",
    expected: [],
  },
  {
    name: 'two schemas, same table name',
    sql: 'SELECT * FROM archive.orders WHERE customer_id = 5',
    expected: [{ table: 'archive.orders', columns: ['customer_id'] }],
  },
  {
    name: 'UPDATE (EXPLAIN only, never executed)',
    sql: 'UPDATE orders SET total = total + 1 WHERE customer_id = 55',
    expected: [{ table: 'public.orders', columns: ['customer_id'] }],
  },
];

function describeRec(r: StatementIndexAdvice['recommendations'][number]): Expected {
  return {
    table: `${r.schema}.${r.table}`,
    columns: r.columns.map((c, i) => (r.order?.[i] === 'desc' ? `${c} DESC` : c)),
    ...(r.include ? { include: r.include } : {}),
    ...(r.where ? { where: r.where } : {}),
  };
}

async function planCost(client: pg.Client, c: AdvisorCase): Promise<number> {
  const r = await client.query(`EXPLAIN (FORMAT JSON) ${c.sql}`, c.params ? [...c.params] : []);
  const rows = r.rows as { 'QUERY PLAN': [{ Plan: { 'Total Cost': number } }] }[];
  return rows[0]!['QUERY PLAN'][0].Plan['Total Cost'];
}

export function advisorSuite(method: 'estimate' | 'hypopg'): void {
  let sandbox: SandboxCluster;
  let client: pg.Client;
  const table: string[] = [];

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 0 });
    client = await sandbox.connect('primary');
    await client.query(SCHEMA);
    // Its own statement: VACUUM cannot run in the multi-statement string's transaction.
    await client.query('VACUUM ANALYZE');
  }, 180_000);

  afterAll(async () => {
    if (table.length > 0) console.log(`advisor suite (${method}):\n${table.join('\n')}`);
    await client?.end();
    await sandbox?.stop();
  });

  describe(`advisor suite through the ${method} path`, () => {
    for (const c of CASES) {
      it(c.name, async () => {
        const advice = await adviseStatementIndexes(client, c.sql, c.params, {
          hypopg: method === 'hypopg' ? 'require' : 'off',
        });
        expect(advice.method).toBe(method);
        if (method === 'estimate') expect(advice.note).toContain('planner-statistics estimate');
        const got = advice.recommendations.map(describeRec);
        const gotText = got.length === 0 ? 'none' : got.map((g) => JSON.stringify(g)).join(' + ');
        let real = '';
        if (advice.recommendations.length > 0) {
          // Built for real: the statement's EXPLAIN cost must drop.
          const before = await planCost(client, c);
          for (const r of advice.recommendations) {
            expect(r.sql).toMatch(/^CREATE INDEX CONCURRENTLY IF NOT EXISTS "[^"]+" ON /);
            expect(r.priority).toBeGreaterThanOrEqual(4);
            await client.query(r.sql);
          }
          const after = await planCost(client, c);
          for (const r of advice.recommendations) {
            await client.query(`DROP INDEX ${`"${r.schema}"`}.${`"${r.name}"`}`);
          }
          real = ` | built: ${before.toFixed(0)} -> ${after.toFixed(0)} (${Math.round((1 - after / before) * 100)}% drop)`;
          expect(after).toBeLessThan(before);
        }
        table.push(
          `| ${c.name} | ${c.expected.length === 0 ? 'none' : c.expected.map((e) => JSON.stringify(e)).join(' + ')} | ${gotText} | what-if ${advice.cost.toFixed(0)} -> ${advice.costWithIndexes.toFixed(0)}${real} |`,
        );
        // A set of indexes: compared in a stable order.
        const byName = (a: Expected, b: Expected) =>
          JSON.stringify(a).localeCompare(JSON.stringify(b));
        expect([...got].sort(byName)).toEqual([...c.expected].sort(byName));
      });
    }
  });
}
