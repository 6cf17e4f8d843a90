import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseOptimizationService } from '../packages/core/src/index.js';

describe('DatabaseOptimizationService: the facade over the whole feature set', () => {
  let sandbox: SandboxCluster;
  let service: DatabaseOptimizationService;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query(
      'primary',
      `CREATE TABLE trades (id serial PRIMARY KEY, symbol text NOT NULL, qty int, created_at timestamptz DEFAULT now());
       INSERT INTO trades (symbol, qty) SELECT 'S' || (i % 2000), i % 50 FROM generate_series(1, 200000) i;
       ANALYZE trades;
       CREATE TABLE market_data (ts timestamptz NOT NULL, symbol text, price numeric) PARTITION BY RANGE (ts);`,
    );
    await sandbox.waitForReplay();
    service = new DatabaseOptimizationService(
      {
        primary: sandbox.primary.url,
        replicas: sandbox.replicas.map((r) => r.url),
        slowQuery: { thresholdMs: 1, minExplainIntervalMs: 0 },
        consistency: { level: 'eventual' },
      },
      {},
    );
    await service.initialize();
  });
  afterAll(async () => {
    await service?.close();
    await sandbox?.stop();
  });

  it('read() and write() sessions go to a replica and to the primary', async () => {
    const read = await service.read((db) =>
      db.query<{ port: number }>('SELECT inet_server_port() AS port'),
    );
    const write = await service.write((db) =>
      db.query<{ port: number }>('SELECT inet_server_port() AS port'),
    );
    expect(read.rows[0]!.port).toBe(sandbox.replicas[0]!.port);
    expect(write.rows[0]!.port).toBe(sandbox.primary.port);
  });

  it('optimizeIndexes: a slow filtered scan becomes a recommendation, and apply builds a valid index', async () => {
    await service.read((db) => db.query('SELECT * FROM trades WHERE symbol = $1', ['S42']));
    // Wait for this statement's own captured plan (another statement's may arrive first).
    const planned = () =>
      service
        .slowQueryReport()
        .queries.some(
          (q) =>
            q.query.includes('FROM trades WHERE symbol') &&
            q.plan?.findings.some((f) => f.kind === 'seq-scan'),
        );
    await waitUntil(planned, { timeoutMs: 20_000, message: 'no seq-scan plan was captured' });
    expect(planned()).toBe(true);
    const result = await service.optimizeIndexes({ tables: ['trades'], apply: true });
    const rec = result.recommendations.find(
      (r) => r.table === 'trades' && r.columns.includes('symbol'),
    );
    expect(rec?.priority).toBeGreaterThanOrEqual(4);
    expect(result.applied.some((a) => a.status === 'created')).toBe(true);
    const [index] = await sandbox.query<{ valid: boolean }>(
      'primary',
      `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
       WHERE i.indrelid = 'trades'::regclass AND a.attname = 'symbol'`,
    );
    expect(index?.valid).toBe(true);
    // Applying again builds nothing new.
    const again = await service.optimizeIndexes({ tables: ['trades'], apply: true });
    expect(again.applied.some((a) => a.status === 'created')).toBe(false);
    // The service rebuilds an index (REINDEX CONCURRENTLY) and takes a bloat threshold.
    const built = result.applied.find((a) => a.status === 'created')!;
    const rebuilt = await service.rebuildIndex('public', built.indexName!);
    expect(rebuilt).toMatchObject({ status: 'rebuilt', name: built.indexName });
    expect((await service.rebuildIndex('public', 'no_such_index')).status).toBe('missing');
    await service.optimizeIndexes({ tables: ['trades'], bloatThresholdPercent: 10 });
  });

  it('setupPartitioning premakes daily partitions; analyzeDatabaseHealth reports nodes, replication, slow queries, indexes and partitions', async () => {
    const setup = await service.setupPartitioning({
      table: 'market_data',
      column: 'ts',
      type: 'range',
      interval: 'daily',
      premake: 3,
      retention: { olderThan: 30, unit: 'days' },
    });
    expect(setup.created.length).toBeGreaterThanOrEqual(4);
    await service.write((db) => db.query("INSERT INTO market_data VALUES (now(), 'BTC', 1)"));
    const health = await service.analyzeDatabaseHealth();
    expect(health.nodes.map((n) => n.role).sort()).toEqual(['primary', 'replica']);
    expect(health.replication).toHaveLength(1);
    expect(health.replication[0]!.up).toBe(true);
    expect(health.slowQueries.queries.length).toBeGreaterThan(0);
    // The index report was made (not skipped) and finds no invalid index in a fresh database.
    expect(health.indexes).toMatchObject({ invalid: [], bloatMethod: expect.any(String) });
    expect(health.partitions[0]!.partitions.length).toBeGreaterThanOrEqual(4);
    const analysis = await service.analyzeQuery('SELECT * FROM trades WHERE qty = $1', [3]);
    expect(analysis.executionPlan.cost).toBeGreaterThan(0);
  });
});
