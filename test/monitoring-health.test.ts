import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseOptimizationService } from '../packages/core/src/index.js';

const until = <T>(what: string, fn: () => T, timeoutMs = 15_000) =>
  waitUntil(fn, { timeoutMs, intervalMs: 25, message: `no ${what}` });

describe('analyzeDatabaseHealth: the fuller report', () => {
  let sandbox: SandboxCluster;
  let service: DatabaseOptimizationService;
  const clients: pg.Client[] = [];

  const pidOf = new Map<pg.Client, number>();
  async function client(): Promise<pg.Client> {
    const c = new pg.Client({
      connectionString: sandbox.primary.url,
      application_name: 'health-test',
    });
    c.on('error', () => {});
    await c.connect();
    const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    pidOf.set(c, rows[0]!.pid);
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query(
      'primary',
      `CREATE TABLE accounts (id int PRIMARY KEY, balance int);
       INSERT INTO accounts SELECT i, 100 FROM generate_series(1, 5000) i;
       DELETE FROM accounts WHERE id > 4000;
       CREATE TABLE events (ts timestamptz NOT NULL, v int) PARTITION BY RANGE (ts);
       CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
       INSERT INTO events SELECT '2026-06-01'::timestamptz + i * interval '1 minute', i FROM generate_series(1, 2000) i;
       ANALYZE;`,
    );
    await sandbox.waitForReplay();
    service = new DatabaseOptimizationService({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 200 },
      monitoring: { intervalMs: 200, thresholds: { lockWaitMs: 300, longTransactionMs: 300 } },
    });
    await service.initialize();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await service?.close();
    await sandbox?.stop();
  });

  it('reports connections per node, cache hit ratio, xid age, tables, who blocks whom, long transactions, partitions and firing alerts', async () => {
    await service.read((db) => db.query('SELECT count(*) FROM accounts WHERE balance = 100'));
    const holder = await client();
    const waiter = await client();
    await holder.query('BEGIN');
    await holder.query('UPDATE accounts SET balance = balance + 1 WHERE id = 42');
    const blocked = waiter.query('UPDATE accounts SET balance = balance - 1 WHERE id = 42');
    blocked.catch(() => {});
    try {
      await until('the lock-wait alert', () =>
        service.cluster.alerts().find((a) => a.kind === 'lock-wait' && a.node === 'primary'),
      );
      const report = await service.analyzeDatabaseHealth({ indexes: false });

      expect(report.nodeFigures.map((f) => f.node).sort()).toEqual(['primary', 'replica-1']);
      for (const figures of report.nodeFigures) {
        expect(figures.connections.max).toBeGreaterThan(0);
        expect(figures.connections.used).toBeGreaterThanOrEqual(1);
        expect(figures.connections.usage).toBeCloseTo(
          figures.connections.used / figures.connections.max,
        );
        expect(figures.cacheHitRatio).toBeGreaterThan(0);
        expect(figures.cacheHitRatio).toBeLessThanOrEqual(1);
        expect(figures.xidAge.age).toBeGreaterThan(0);
        expect(figures.xidAge.wraparoundFraction).toBeLessThan(0.5);
      }
      // The primary's figure counts the two sessions this test opened.
      const primary = report.nodeFigures.find((f) => f.node === 'primary')!;
      expect(primary.connections.used).toBeGreaterThanOrEqual(3);
      expect(report.unreachable).toEqual([]);

      const accounts = report.tables.find((t) => t.table === 'accounts')!;
      expect(accounts).toMatchObject({ schema: 'public', liveTuples: 4000 });
      expect(accounts.deadTuples).toBeGreaterThan(0);
      expect(accounts.seqScans + accounts.indexScans).toBeGreaterThan(0);
      expect(accounts.bytes).toBeGreaterThan(0);
      expect(accounts.lastAnalyze).not.toBeNull();

      const wait = report.locks.find((l) => l.waiting.pid === pidOf.get(waiter));
      expect(wait, JSON.stringify(report.locks)).toBeDefined();
      expect(wait!.blockedBy.map((b) => b.pid)).toEqual([pidOf.get(holder)]);
      expect(wait!.waiting.query).toMatch(/UPDATE accounts/i);
      // Normalized: the constants of the statement are not in the report.
      expect(wait!.waiting.query).not.toContain('42');
      expect(wait!.blockedBy[0]!.state).toBe('idle in transaction');

      const long = report.longTransactions.find((t) => t.pid === pidOf.get(holder));
      expect(long?.transactionMs).toBeGreaterThanOrEqual(300);

      const events = report.partitions.find((p) => p.table === 'events');
      expect(events?.partitions.map((p) => p.name)).toEqual(['events_2026']);
      expect(events!.totalBytes).toBeGreaterThan(0);

      expect(report.alerts.some((a) => a.kind === 'lock-wait')).toBe(true);
    } finally {
      await holder.query('ROLLBACK');
      await blocked.catch(() => {});
    }
  }, 60_000);
});
