import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeCommand, indexesCommand, partitionsCommand } from './optimize.js';

function capture() {
  let text = '';
  const write = (t: string) => {
    text += t;
  };
  return { out: { write }, text: () => text };
}

describe('pgpulse analyze / indexes / partitions', () => {
  let sandbox: SandboxCluster;
  let urls: string[];

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query(
      'primary',
      `CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, amount int);
       INSERT INTO orders (customer_id, amount) SELECT i % 5000, i % 100 FROM generate_series(1, 200000) i;
       CREATE TABLE customers (id int PRIMARY KEY);
       CREATE TABLE invoices (id serial PRIMARY KEY, customer_id int REFERENCES customers (id));
       CREATE INDEX invoices_dup_a ON orders (customer_id, amount);
       CREATE INDEX invoices_dup_b ON orders (customer_id);
       ANALYZE;
       CREATE TABLE ticks (ts timestamptz NOT NULL, v int) PARTITION BY RANGE (ts);`,
    );
    await sandbox.waitForReplay();
    urls = [sandbox.primary.url, sandbox.replicas[0]!.url];
  });
  afterAll(async () => {
    await sandbox?.stop();
  });

  it('analyze prints findings and an index suggestion, as text and as JSON', async () => {
    await sandbox.query('primary', 'DROP INDEX invoices_dup_a; DROP INDEX invoices_dup_b');
    const text = capture();
    expect(
      await analyzeCommand(text.out, urls, 'SELECT * FROM orders WHERE amount = 7', {
        json: false,
      }),
    ).toBe(0);
    expect(text.text()).toMatch(/priority [45] index/);
    expect(text.text()).toContain('"amount"');
    const json = capture();
    expect(
      await analyzeCommand(json.out, urls, 'SELECT * FROM orders WHERE amount = 7', { json: true }),
    ).toBe(0);
    expect(JSON.parse(json.text()).suggestions.length).toBeGreaterThan(0);
  });

  it('indexes reports a foreign key without an index and a duplicate, and --apply builds the FK index', async () => {
    await sandbox.query(
      'primary',
      'CREATE INDEX o_a ON orders (customer_id, amount); CREATE INDEX o_b ON orders (customer_id)',
    );
    const out = capture();
    expect(await indexesCommand(out.out, urls, { json: true, apply: true, priority: '1' })).toBe(0);
    const report = JSON.parse(out.text());
    expect(report.foreignKeysWithoutIndex.map((f: { table: string }) => f.table)).toContain(
      'invoices',
    );
    expect(report.duplicates.map((d: { name: string }) => d.name)).toContain('o_b');
    expect(report.applied.some((a: { status: string }) => a.status === 'created')).toBe(true);
    const built = await sandbox.query(
      'primary',
      "SELECT 1 FROM pg_index WHERE indrelid = 'invoices'::regclass AND indisvalid AND NOT indisprimary",
    );
    expect(built).toHaveLength(1);
  });

  it('indexes --rebuild-bloated rebuilds a bloated index concurrently: it reports it, and its size drops', async () => {
    // 200k rows, 90 % deleted and vacuumed: the index keeps its pages, a tenth of them in use.
    await sandbox.query(
      'primary',
      `CREATE TABLE events (id int NOT NULL, v int);
       INSERT INTO events SELECT g, g % 7 FROM generate_series(1, 200000) g;
       CREATE INDEX events_id ON events (id);
       DELETE FROM events WHERE id % 10 <> 0;`,
    );
    await sandbox.query('primary', 'VACUUM ANALYZE events');
    const size = async () =>
      Number(
        (
          await sandbox.query<{ bytes: string }>(
            'primary',
            "SELECT pg_relation_size('events_id') AS bytes",
          )
        )[0]!.bytes,
      );
    const before = await size();
    // Without --rebuild-bloated the index is only reported.
    const report = capture();
    expect(
      await indexesCommand(report.out, urls, {
        json: false,
        tables: 'events',
        apply: false,
        priority: '4',
        bloatThreshold: 50,
      }),
    ).toBe(0);
    expect(report.text()).toMatch(/bloated: public\.events_id \d+ %/);
    expect(await size()).toBe(before);

    const out = capture();
    expect(
      await indexesCommand(out.out, urls, {
        json: true,
        tables: 'events',
        apply: false,
        priority: '4',
        rebuildBloated: true,
        bloatThreshold: 50,
      }),
    ).toBe(0);
    const rebuilt = JSON.parse(out.text()).rebuilt as {
      status: string;
      index: { name: string };
      sizeBytesBefore: number;
      sizeBytesAfter: number;
    }[];
    expect(rebuilt.map((r) => [r.index.name, r.status])).toEqual([['events_id', 'rebuilt']]);
    const after = await size();
    expect(rebuilt[0]!.sizeBytesBefore).toBe(before);
    expect(rebuilt[0]!.sizeBytesAfter).toBe(after);
    // A tenth of the entries are left: the rebuilt index is far smaller.
    expect(after).toBeLessThan(before / 3);
    const valid = await sandbox.query<{ valid: boolean }>(
      'primary',
      "SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'events_id'::regclass",
    );
    expect(valid[0]!.valid).toBe(true);
  });

  it('partitions premakes daily partitions of a partitioned table', async () => {
    const out = capture();
    const code = await partitionsCommand(out.out, urls, {
      json: false,
      table: 'ticks',
      column: 'ts',
      interval: 'daily',
      premake: '2',
      retentionDays: '7',
    });
    expect(code).toBe(0);
    const parts = await sandbox.query(
      'primary',
      "SELECT 1 FROM pg_inherits WHERE inhparent = 'ticks'::regclass",
    );
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(out.text()).toContain('created ticks_p');
  });

  it('partitions --migrate converts a plain table online and prints each partition with its size', async () => {
    await sandbox.query(
      'primary',
      `CREATE TABLE visits (id bigserial, at timestamptz NOT NULL, page text, PRIMARY KEY (id, at));
       INSERT INTO visits (at, page) SELECT now() - (g % 10) * interval '1 day', 'p' || g
         FROM generate_series(1, 5000) g;`,
    );
    const out = capture();
    const code = await partitionsCommand(out.out, urls, {
      json: false,
      table: 'visits',
      column: 'at',
      interval: 'daily',
      premake: '2',
      migrate: true,
      batchSize: 1000,
    });
    expect(code).toBe(0);
    expect(out.text()).toMatch(/migrated online in .* 5000 rows copied in 5 batches/);
    expect(out.text()).toMatch(/visits_p\d{8}\s+\d+ rows \d+\.\d MiB/);
    expect(out.text()).toContain('old table kept as visits_old');
    const [row] = await sandbox.query<{ kind: string; n: number }>(
      'primary',
      "SELECT relkind::text AS kind, (SELECT count(*)::int FROM visits) AS n FROM pg_class WHERE oid = 'visits'::regclass",
    );
    expect(row).toEqual({ kind: 'p', n: 5000 });
  });

  it('bad input exits 2 and a database refusal exits 1, with the reason', async () => {
    const none = capture();
    expect(await analyzeCommand(none.out, [], 'SELECT 1', { json: false })).toBe(2);
    const notPartitioned = capture();
    const code = await partitionsCommand(notPartitioned.out, urls, {
      json: false,
      table: 'orders',
      column: 'id',
      interval: 'daily',
      premake: '2',
    });
    expect(code).toBe(1);
    expect(notPartitioned.text()).toMatch(/not a partitioned table/);
  });
});
