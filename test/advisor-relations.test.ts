import { analyzeQuery } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * #14 build item 1 and 5: advice names the table the statement read, whatever search_path
 * finds first, and "never analyzed" comes from pg_statistic (same on every node, kept by
 * pg_stat_reset()), not from one node's last_analyze.
 */

let sandbox: SandboxCluster;
let primary: pg.Client;
let replica: pg.Client;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
  primary = await sandbox.connect('primary');
  await primary.query(`
    CREATE SCHEMA sales;
    CREATE TABLE sales.lines (id bigint PRIMARY KEY, cust int NOT NULL, qty int NOT NULL);
    INSERT INTO sales.lines SELECT g, g % 20000, g % 7 FROM generate_series(1, 120000) g;
    CREATE TABLE public.lines (id bigint PRIMARY KEY, cust int NOT NULL);
    INSERT INTO public.lines SELECT g, g FROM generate_series(1, 50) g;
    CREATE SCHEMA hidden;
    CREATE TABLE hidden.events (id bigint PRIMARY KEY, kind int NOT NULL);
    INSERT INTO hidden.events SELECT g, g % 30000 FROM generate_series(1, 120000) g;
    ANALYZE;`);
  await sandbox.waitForReplay();
  replica = await sandbox.connect('replica1');
}, 120_000);

afterAll(async () => {
  await replica?.end();
  await primary?.end();
  await sandbox?.stop();
});

function indexSql(analysis: Awaited<ReturnType<typeof analyzeQuery>>): string[] {
  return analysis.suggestions.flatMap((s) => (s.kind === 'index' && s.sql ? [s.sql] : []));
}

describe('exact relations', () => {
  it('advises on sales.lines, not the small public.lines that search_path finds first', async () => {
    const analysis = await analyzeQuery(primary, 'SELECT * FROM sales.lines WHERE cust = $1', [42]);
    const sql = indexSql(analysis);
    expect(sql.length).toBeGreaterThan(0);
    for (const s of sql) {
      expect(s).toContain('ON "sales"."lines"');
      expect(s).not.toContain('"public"."lines"');
      // One DDL form: named, IF NOT EXISTS, CONCURRENTLY.
      expect(s).toMatch(/^CREATE INDEX CONCURRENTLY IF NOT EXISTS "[^"]+" ON /);
    }
    expect(analysis.suggestions.every((s) => s.relation !== 'public.lines')).toBe(true);
  });

  it('advises on a table whose schema is off the search_path', async () => {
    await primary.query('SET search_path = public');
    try {
      const analysis = await analyzeQuery(primary, 'SELECT * FROM hidden.events WHERE kind = 7');
      expect(indexSql(analysis)).toEqual([
        expect.stringContaining('ON "hidden"."events" USING btree ("kind")'),
      ]);
    } finally {
      await primary.query('RESET search_path');
    }
  });

  it('with search_path = sales, the bare name is sales.lines and the advice says so', async () => {
    await primary.query('SET search_path = sales');
    try {
      const analysis = await analyzeQuery(primary, 'SELECT * FROM lines WHERE cust = 42');
      const sql = indexSql(analysis);
      expect(sql.length).toBeGreaterThan(0);
      for (const s of sql) expect(s).toContain('ON "sales"."lines"');
    } finally {
      await primary.query('RESET search_path');
    }
  });
});

describe('statistics checks', () => {
  const neverAnalyzed = (analysis: Awaited<ReturnType<typeof analyzeQuery>>) =>
    analysis.suggestions.filter((s) => s.description.includes('never been analyzed'));

  it('no "never analyzed" on a replica, whose last_analyze is empty', async () => {
    const [row] = (
      await replica.query(
        `SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables
          WHERE schemaname = 'sales' AND relname = 'lines'`,
      )
    ).rows as { last_analyze: Date | null; last_autoanalyze: Date | null }[];
    // The premise: the replica's per-node counters do not know the primary's ANALYZE.
    expect(row?.last_analyze ?? null).toBeNull();
    const analysis = await analyzeQuery(replica, 'SELECT * FROM sales.lines WHERE cust = 3');
    expect(neverAnalyzed(analysis)).toEqual([]);
  });

  it('no "never analyzed" after pg_stat_reset(), but yes for a table really never analyzed', async () => {
    await primary.query('SELECT pg_stat_reset()');
    const analysis = await analyzeQuery(primary, 'SELECT * FROM sales.lines WHERE cust = 3');
    expect(neverAnalyzed(analysis)).toEqual([]);

    await primary.query(`
      CREATE TABLE sales.fresh (id int, v int) WITH (autovacuum_enabled = false);
      INSERT INTO sales.fresh SELECT g, g % 10 FROM generate_series(1, 20000) g;`);
    // Its size is known from the live-tuple counter only (reltuples is -1): wait for its flush.
    for (let i = 0; i < 100; i++) {
      const { rows } = await primary.query(
        "SELECT n_live_tup::int AS n FROM pg_stat_user_tables WHERE relname = 'fresh'",
      );
      if ((rows[0] as { n?: number } | undefined)?.n === 20000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const fresh = await analyzeQuery(primary, 'SELECT * FROM sales.fresh WHERE v = 3');
    expect(neverAnalyzed(fresh)).toEqual([
      expect.objectContaining({ sql: 'ANALYZE "sales"."fresh"', relation: 'sales.fresh' }),
    ]);
  });
});
