/**
 * Regenerates the plan fixtures in ./fixtures from a real sandbox cluster:
 *
 *   pnpm tsx scripts/capture-plan-fixtures.ts
 *
 * The unit tests read the saved JSON so they stay fast and deterministic.
 * Buffer and I/O timing keys are dropped to keep the files small; nothing else is edited.
 */
import { writeFile } from 'node:fs/promises';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import pg from 'pg';

interface Case {
  readonly name: string;
  readonly description: string;
  readonly settings?: readonly string[];
  readonly sql: string;
  readonly params?: readonly unknown[];
}

const CASES: readonly Case[] = [
  {
    name: 'seq-scan-plain',
    description: 'plain EXPLAIN of a selective filter on a 200k-row unindexed table',
    sql: 'EXPLAIN (FORMAT JSON) SELECT * FROM orders WHERE customer_id = 42',
  },
  {
    name: 'seq-scan-analyze',
    description: 'EXPLAIN ANALYZE of the same',
    sql: 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM orders WHERE customer_id = 42',
  },
  {
    name: 'seq-scan-generic-parallel',
    description: 'generic plan of parameterised text, a parallel seq scan under Gather',
    sql: 'EXPLAIN (GENERIC_PLAN, FORMAT JSON) SELECT * FROM orders o WHERE o.customer_id = $1 AND amount > $2',
  },
  {
    name: 'update-plain',
    description: 'plain EXPLAIN of an UPDATE over a seq scan',
    sql: 'EXPLAIN (FORMAT JSON) UPDATE orders SET amount = amount + 1 WHERE customer_id = 7',
  },
  {
    name: 'disk-sort',
    description: 'a sort larger than work_mem',
    settings: ["SET work_mem = '64kB'", 'SET max_parallel_workers_per_gather = 0'],
    sql: 'EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM orders ORDER BY amount, created_at',
  },
  {
    name: 'disk-hash',
    description: 'a hash join whose hash needs several batches',
    settings: ["SET work_mem = '64kB'", 'SET max_parallel_workers_per_gather = 0'],
    sql: 'EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id',
  },
  {
    name: 'hashagg-disk',
    description: 'a hash aggregate spilling to disk',
    settings: [
      "SET work_mem = '64kB'",
      'SET enable_sort = off',
      'SET max_parallel_workers_per_gather = 0',
    ],
    sql: 'EXPLAIN (ANALYZE, FORMAT JSON) SELECT customer_id, created_at, count(*) FROM orders GROUP BY 1, 2',
  },
  {
    name: 'nested-loop-seq',
    description: 'a nested loop re-reading an unindexed inner table for each outer row',
    settings: [
      'SET enable_hashjoin = off',
      'SET enable_mergejoin = off',
      'SET enable_material = off',
      'SET enable_memoize = off',
      'SET max_parallel_workers_per_gather = 0',
    ],
    sql: 'EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM small_a a JOIN small_b b ON b.a_id = a.id',
  },
  {
    name: 'nested-loop-index',
    description: 'a nested loop doing 200k index lookups',
    settings: [
      'SET enable_hashjoin = off',
      'SET enable_mergejoin = off',
      'SET enable_memoize = off',
      'SET max_parallel_workers_per_gather = 0',
    ],
    sql: 'EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id',
  },
  {
    name: 'sort-under-limit',
    description: 'top-10 of 200k rows by an unindexed column',
    settings: ['SET max_parallel_workers_per_gather = 0'],
    sql: 'EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM orders ORDER BY created_at DESC LIMIT 10',
  },
  {
    name: 'heap-fetches',
    description: 'an index-only scan on a table whose visibility map is stale',
    settings: ['SET enable_seqscan = off', 'SET enable_bitmapscan = off'],
    sql: 'EXPLAIN (ANALYZE, FORMAT JSON) SELECT customer_id FROM events WHERE customer_id < 500',
  },
  {
    name: 'row-estimate',
    description: 'three perfectly correlated columns: the planner multiplies selectivities',
    settings: ['SET max_parallel_workers_per_gather = 0'],
    sql: 'EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM correlated WHERE a = 1 AND b = 1 AND c = 1',
  },
  {
    name: 'lossy-bitmap',
    description: 'a bitmap heap scan that no longer fits work_mem',
    settings: [
      "SET work_mem = '64kB'",
      'SET enable_seqscan = off',
      'SET enable_indexscan = off',
      'SET max_parallel_workers_per_gather = 0',
    ],
    sql: 'EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM events WHERE customer_id < 3000',
  },
  {
    name: 'rows-removed',
    description: 'an index scan whose filter discards most fetched rows',
    settings: ['SET enable_seqscan = off', 'SET enable_bitmapscan = off'],
    sql: "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM events WHERE customer_id < 2000 AND kind = 'rare'",
  },
];

const SETUP = [
  `CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int, amount numeric(10,2) NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now())`,
  `INSERT INTO orders (customer_id, amount, created_at)
     SELECT (g % 5000) + 1, (g % 1000) / 10.0, timestamptz '2025-01-01' - g * interval '1 second'
       FROM generate_series(1, 200000) g`,
  'CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)',
  "INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 5000) g",
  'CREATE TABLE small_a (id int NOT NULL, label text)',
  "INSERT INTO small_a SELECT g, 'a' || g FROM generate_series(1, 1500) g",
  'CREATE TABLE small_b (a_id int NOT NULL, label text)',
  "INSERT INTO small_b SELECT g % 1500, 'b' || g FROM generate_series(1, 3000) g",
  `CREATE TABLE events (id bigserial PRIMARY KEY, customer_id int NOT NULL, kind text NOT NULL,
     payload text)`,
  `INSERT INTO events (customer_id, kind, payload)
     SELECT g % 10000, CASE WHEN g % 1000 = 0 THEN 'rare' ELSE 'common' END, repeat('x', 50)
       FROM generate_series(1, 200000) g`,
  'CREATE INDEX events_customer_idx ON events (customer_id)',
  'CREATE TABLE correlated (id serial, a int, b int, c int)',
  'INSERT INTO correlated (a, b, c) SELECT g % 100, g % 100, g % 100 FROM generate_series(1, 200000) g',
  'VACUUM ANALYZE',
  // Dirty half of the pages after VACUUM so index-only scans must visit the heap.
  'UPDATE events SET payload = payload WHERE id % 2 = 0',
];

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (/^(Shared|Local|Temp) .*Blocks$|I\/O|^Planning$/.test(key)) continue;
    out[key] = strip(child);
  }
  return out;
}

const sandbox: SandboxCluster = await startCluster({ replicas: 0 });
const client = new pg.Client({ connectionString: sandbox.primary.url });
try {
  await client.connect();
  for (const statement of SETUP) await client.query(statement);
  const relationRows: Record<string, number> = {};
  const sizes = await client.query<{ relname: string; reltuples: number }>(
    "SELECT relname, reltuples::float8 AS reltuples FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
  );
  for (const row of sizes.rows) relationRows[row.relname] = row.reltuples;
  for (const c of CASES) {
    await client.query('RESET ALL');
    for (const setting of c.settings ?? []) await client.query(setting);
    const result = await client.query(c.sql, c.params as unknown[] | undefined);
    const fixture = {
      description: c.description,
      server: (await client.query('SHOW server_version')).rows[0].server_version,
      settings: c.settings ?? [],
      sql: c.sql,
      relationRows,
      rows: strip(result.rows),
    };
    await writeFile(
      new URL(`../packages/core/src/analysis/fixtures/${c.name}.json`, import.meta.url),
      `${JSON.stringify(fixture, null, 2)}\n`,
    );
    console.log(`wrote ${c.name}.json`);
  }
} finally {
  await client.end().catch(() => {});
  await sandbox.stop();
}
