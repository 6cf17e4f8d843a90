import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { zonedPools } from '@pgpulse/sandbox/testing';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PartitioningError, PgPulseError } from '../errors/index.js';
import { qualified } from '../sql/index.js';
import {
  type PartitionConnectionProvider,
  PartitionManager,
  type PartitionManagerOptions,
} from './partition-manager.js';
import { partitionReport } from './report.js';
import { partitionLockKey } from './sql.js';
import type { PartitionStrategy } from './strategy.js';

let sandbox: SandboxCluster;
/** Assertions read the catalog here, in UTC. */
let admin: pg.Pool;
/** The manager's connections use a zone with a half-hour offset: bounds must not move. */
let app: pg.Pool;
const statements: string[] = [];

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 0 });
  ({ admin, app } = zonedPools(sandbox.primary.url, { adminMax: 3 }));
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await app?.end();
  await sandbox?.stop();
});

const connect: PartitionConnectionProvider = async () => {
  const client = await app.connect();
  return {
    client: {
      query: (text, values) => {
        statements.push(text);
        return client.query(text, values);
      },
    },
    release: (destroy) => client.release(destroy === true ? true : undefined),
  };
};

class Clock {
  constructor(public current: Date) {}
  readonly now = () => this.current;
  advance(days: number, hours = 0): void {
    this.current = new Date(this.current.getTime() + days * 86_400_000 + hours * 3_600_000);
  }
}

function manager(
  strategies: PartitionStrategy[],
  clock: Clock,
  options: PartitionManagerOptions = {},
): PartitionManager {
  return new PartitionManager(connect, strategies, { now: clock.now, retryDelayMs: 1, ...options });
}

async function sql<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]> {
  const result = await admin.query(text, values);
  return result.rows as R[];
}

/** name -> bound of every partition, from the catalog. */
async function partitions(table: string, schema = 'public'): Promise<Record<string, string>> {
  const rows = await sql<{ name: string; bound: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = to_regclass($1) ORDER BY c.relname`,
    [qualified(schema, table)],
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.bound]));
}

/** Which partition each row landed in, keyed by the row's ts in ISO form. */
async function placement(table: string): Promise<Record<string, string>> {
  const rows = await sql<{ part: string; ts: Date }>(
    `SELECT c.relname AS part, t.ts FROM ${table} t JOIN pg_class c ON c.oid = t.tableoid ORDER BY t.ts`,
  );
  return Object.fromEntries(rows.map((r) => [r.ts.toISOString(), r.part]));
}

async function exists(name: string, schema = 'public'): Promise<boolean> {
  const [row] = await sql<{ oid: string | null }>('SELECT to_regclass($1)::text AS oid', [
    qualified(schema, name),
  ]);
  return row?.oid !== null && row?.oid !== undefined;
}

const day = (d: number) =>
  `FOR VALUES FROM ('2024-03-${String(d).padStart(2, '0')} 00:00:00+00') TO ('2024-03-${String(d + 1).padStart(2, '0')} 00:00:00+00')`;

const daily = (table: string, extra: Partial<PartitionStrategy> = {}): PartitionStrategy => ({
  table,
  column: 'ts',
  type: 'range',
  interval: 'daily',
  retention: { olderThan: 7, unit: 'days' },
  ...extra,
});

async function createMarketData(table: string): Promise<void> {
  await sql(
    `CREATE TABLE ${table} (ts timestamptz NOT NULL, symbol text NOT NULL DEFAULT 'AAPL',
       price numeric CHECK (price > 0), PRIMARY KEY (symbol, ts)) PARTITION BY RANGE (ts)`,
  );
  await sql(`CREATE INDEX ON ${table} (ts)`);
}

async function insertDays(table: string, days: number[]): Promise<void> {
  for (const d of days) {
    await sql(`INSERT INTO ${table} (ts, price) VALUES ($1, 1)`, [
      `2024-03-${String(d).padStart(2, '0')}T06:00:00Z`,
    ]);
  }
}

describe('daily range partitions', () => {
  it('setup premakes today and 4 days ahead, in UTC, and rows land in the right partition', async () => {
    await createMarketData('market_data');
    const clock = new Clock(new Date('2024-03-10T12:00:00Z'));
    const pm = manager([], clock);
    const result = await pm.setup(daily('market_data'));
    expect(result.status).toBe('done');
    expect(result.created.map((c) => c.name)).toEqual([
      'market_data_p20240310',
      'market_data_p20240311',
      'market_data_p20240312',
      'market_data_p20240313',
      'market_data_p20240314',
    ]);
    expect(await partitions('market_data')).toEqual({
      market_data_p20240310: day(10),
      market_data_p20240311: day(11),
      market_data_p20240312: day(12),
      market_data_p20240313: day(13),
      market_data_p20240314: day(14),
    });
    expect(pm.strategies.map((s) => s.table)).toEqual(['market_data']);

    await insertDays('market_data', [10, 11, 12, 13, 14]);
    await sql(`INSERT INTO market_data (ts, price) VALUES
      ('2024-03-10 23:59:59.999999+00', 2), ('2024-03-11 00:00:00+00', 2)`);
    expect(await placement('market_data')).toEqual({
      '2024-03-10T06:00:00.000Z': 'market_data_p20240310',
      '2024-03-10T23:59:59.999Z': 'market_data_p20240310',
      '2024-03-11T00:00:00.000Z': 'market_data_p20240311',
      '2024-03-11T06:00:00.000Z': 'market_data_p20240311',
      '2024-03-12T06:00:00.000Z': 'market_data_p20240312',
      '2024-03-13T06:00:00.000Z': 'market_data_p20240313',
      '2024-03-14T06:00:00.000Z': 'market_data_p20240314',
    });
    // The parent's indexes, checks and defaults reached the partitions.
    const [idx] = await sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_index WHERE indrelid = 'market_data_p20240312'::regclass`,
    );
    expect(idx?.n).toBe(2);
    await expect(
      sql(`INSERT INTO market_data (ts, price) VALUES ('2024-03-12', -1)`),
    ).rejects.toThrow(/check constraint/);

    // A second setup finds everything in place.
    const again = await pm.setup(daily('market_data'));
    expect(again.created).toEqual([]);
  });

  it('after 10 days, maintain() premakes new partitions and drops those older than 7 days; a second run is a no-op', async () => {
    const clock = new Clock(new Date('2024-03-10T12:00:00Z'));
    await createMarketData('ticks');
    const pm = manager([daily('ticks')], clock);
    await pm.setup(daily('ticks'));
    await insertDays('ticks', [10, 11, 12, 13, 14]);

    clock.advance(10); // 2024-03-20 12:00 UTC; cutoff 2024-03-13 12:00
    const report = await pm.maintain();
    expect(report.startedAt).toEqual(new Date('2024-03-20T12:00:00Z'));
    const [table] = report.tables;
    expect(table?.status).toBe('done');
    expect(table?.created.map((c) => c.name)).toEqual([
      'ticks_p20240320',
      'ticks_p20240321',
      'ticks_p20240322',
      'ticks_p20240323',
      'ticks_p20240324',
    ]);
    expect(table?.detached.map((d) => [d.name, d.method])).toEqual([
      ['ticks_p20240310', 'concurrent'],
      ['ticks_p20240311', 'concurrent'],
      ['ticks_p20240312', 'concurrent'],
    ]);
    expect(table?.dropped).toEqual(['ticks_p20240310', 'ticks_p20240311', 'ticks_p20240312']);
    expect(Object.keys(await partitions('ticks'))).toEqual([
      'ticks_p20240313',
      'ticks_p20240314',
      'ticks_p20240320',
      'ticks_p20240321',
      'ticks_p20240322',
      'ticks_p20240323',
      'ticks_p20240324',
    ]);
    expect(await exists('ticks_p20240310')).toBe(false);
    expect(Object.keys(await placement('ticks'))).toEqual([
      '2024-03-13T06:00:00.000Z',
      '2024-03-14T06:00:00.000Z',
    ]);

    const second = await pm.maintain();
    expect(second.tables[0]).toMatchObject({
      status: 'done',
      created: [],
      detached: [],
      dropped: [],
      errors: [],
    });
    expect(pm.stats()).toMatchObject({ runs: 2, errors: 0 });
    // The pooled session got its lock_timeout back.
    const client = await app.connect();
    try {
      expect((await client.query('SHOW lock_timeout')).rows[0]).toEqual({ lock_timeout: '0' });
    } finally {
      client.release();
    }
  });

  it('with a DEFAULT partition, retention detaches without CONCURRENTLY and still drops', async () => {
    const clock = new Clock(new Date('2024-03-10T12:00:00Z'));
    await createMarketData('quotes');
    const pm = manager([daily('quotes', { default: true })], clock);
    const setup = await pm.setup(daily('quotes', { default: true }));
    expect(setup.created.map((c) => c.name)).toContain('quotes_default');
    expect((await partitions('quotes')).quotes_default).toBe('DEFAULT');
    await insertDays('quotes', [10, 11, 12, 13, 14]);
    await sql(`INSERT INTO quotes (ts, price) VALUES ('2030-01-01T00:00:00Z', 1)`);

    clock.advance(10);
    const [table] = (await pm.maintain()).tables;
    expect(table?.status).toBe('done');
    expect(table?.detached.map((d) => [d.name, d.method])).toEqual([
      ['quotes_p20240310', 'blocking'],
      ['quotes_p20240311', 'blocking'],
      ['quotes_p20240312', 'blocking'],
    ]);
    expect(table?.dropped).toHaveLength(3);
    expect(Object.keys(await partitions('quotes'))).toEqual([
      'quotes_default',
      'quotes_p20240313',
      'quotes_p20240314',
      'quotes_p20240320',
      'quotes_p20240321',
      'quotes_p20240322',
      'quotes_p20240323',
      'quotes_p20240324',
    ]);
    expect(Object.values(await placement('quotes'))).toEqual([
      'quotes_p20240313',
      'quotes_p20240314',
      'quotes_default',
    ]);

    // A row for a future day sitting in the DEFAULT partition blocks that day's partition only.
    await sql(`INSERT INTO quotes (ts, price) VALUES ('2024-03-27T08:00:00Z', 1)`);
    clock.advance(3); // premake now reaches 2024-03-27
    const [blocked] = (await pm.maintain()).tables;
    expect(blocked?.status).toBe('failed');
    expect(blocked?.created.map((c) => c.name)).toEqual(['quotes_p20240325', 'quotes_p20240326']);
    expect(blocked?.errors).toHaveLength(1);
    expect(blocked?.errors[0]).toMatchObject({
      kind: 'default-has-rows',
      code: 'PGPULSE_PARTITION_DEFAULT_HAS_ROWS',
      partition: '"public"."quotes_p20240327"',
    });
    expect(blocked?.errors[0]?.message).toMatch(/DEFAULT partition "quotes_default" holds rows/);
    expect(await exists('quotes_p20240327')).toBe(false); // the transaction rolled back whole
    expect(pm.stats().errors).toBe(1);

    await sql(`DELETE FROM quotes_default WHERE ts < '2030-01-01'`);
    const [fixed] = (await pm.maintain()).tables;
    expect(fixed?.created.map((c) => c.name)).toEqual(['quotes_p20240327']);
    expect(fixed?.status).toBe('done');
  });

  it("retentionMode 'detach' keeps the old partitions as plain tables with their rows", async () => {
    const clock = new Clock(new Date('2024-03-10T12:00:00Z'));
    await createMarketData('archive');
    const strategy = daily('archive', { premake: 1, retentionMode: 'detach' });
    const pm = manager([strategy], clock);
    await pm.setup(strategy);
    await insertDays('archive', [10, 11]);
    clock.advance(10);
    const [table] = (await pm.maintain()).tables;
    expect(table?.detached.map((d) => d.name)).toEqual(['archive_p20240310', 'archive_p20240311']);
    expect(table?.dropped).toEqual([]);
    const rows = await sql<{ n: number; part: boolean }>(
      `SELECT (SELECT count(*)::int FROM archive_p20240310) AS n,
              (SELECT relispartition FROM pg_class WHERE oid = 'archive_p20240310'::regclass) AS part`,
    );
    expect(rows[0]).toEqual({ n: 1, part: false });
    expect(Object.keys(await partitions('archive'))).toEqual([
      'archive_p20240320',
      'archive_p20240321',
    ]);
  });

  it('finalizes a detach that an interrupted DETACH ... CONCURRENTLY left pending', async () => {
    const clock = new Clock(new Date('2024-03-10T12:00:00Z'));
    await createMarketData('pending');
    const strategy = daily('pending', { premake: 1 });
    const pm = manager([strategy], clock);
    await pm.setup(strategy);

    // A reader's open transaction makes DETACH CONCURRENTLY wait; cancelling it then leaves
    // the partition "detach pending".
    const reader = await admin.connect();
    const detacher = await admin.connect();
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM pending');
      const [{ pid }] = (await detacher.query('SELECT pg_backend_pid() AS pid')).rows as [
        { pid: number },
      ];
      const detach = detacher
        .query('ALTER TABLE pending DETACH PARTITION pending_p20240310 CONCURRENTLY')
        .catch((error: unknown) => error);
      for (let i = 0; i < 500; i++) {
        const [waiting] = await sql<{ w: boolean }>(
          `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted) AS w`,
          [pid],
        );
        if (waiting?.w) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await sql('SELECT pg_cancel_backend($1)', [pid]);
      expect(String(await detach)).toMatch(/cancel/);
      await reader.query('COMMIT');
    } finally {
      reader.release();
      detacher.release();
    }
    const [pendingRow] = await sql<{ p: boolean }>(
      `SELECT inhdetachpending AS p FROM pg_inherits WHERE inhrelid = 'pending_p20240310'::regclass`,
    );
    expect(pendingRow?.p).toBe(true);

    clock.advance(10);
    const [table] = (await pm.maintain()).tables;
    expect(table?.status).toBe('done');
    expect(table?.detached.map((d) => [d.name, d.method])).toEqual([
      ['pending_p20240310', 'concurrent'],
      ['pending_p20240311', 'concurrent'],
    ]);
    expect(table?.dropped).toEqual(['pending_p20240310', 'pending_p20240311']);
    expect(
      statements.some((s) => s.endsWith('DETACH PARTITION "public"."pending_p20240310" FINALIZE')),
    ).toBe(true);
  });
  it('a detach that times out behind a long reader is finished by the next run', async () => {
    const clock = new Clock(new Date('2024-03-10T12:00:00Z'));
    await createMarketData('slow_reader');
    const strategy = daily('slow_reader', { premake: 0 });
    const pm = manager([strategy], clock, { lockTimeoutMs: 100, lockRetries: 1 });
    await pm.setup(strategy);
    clock.advance(10);
    const reader = await admin.connect();
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query('SELECT count(*) FROM slow_reader');
      const [first] = (await pm.maintain()).tables;
      expect(first?.status).toBe('failed');
      expect(first?.created.map((c) => c.name)).toEqual(['slow_reader_p20240320']);
      expect(first?.errors.map((e) => e.kind)).toEqual(['lock-timeout']);
      expect(first?.dropped).toEqual([]);
      const state = await sql<{ pending: boolean }>(
        `SELECT inhdetachpending AS pending FROM pg_inherits WHERE inhrelid = 'slow_reader_p20240310'::regclass`,
      );
      // Phase one of DETACH CONCURRENTLY committed; its wait for the reader timed out.
      expect(state).toEqual([{ pending: true }]);
      await reader.query('COMMIT');
    } finally {
      reader.release();
    }
    const [second] = (await pm.maintain()).tables;
    expect(second?.status).toBe('done');
    expect(second?.detached.map((d) => [d.name, d.method])).toEqual([
      ['slow_reader_p20240310', 'concurrent'],
    ]);
    expect(second?.dropped).toEqual(['slow_reader_p20240310']);
    expect(Object.keys(await partitions('slow_reader'))).toEqual(['slow_reader_p20240320']);
  });
});

describe('one instance at a time', () => {
  it('a manager whose table lock another session holds reports skipped/locked and changes nothing', async () => {
    await createMarketData('locked_data');
    const clock = new Clock(new Date('2024-03-10T12:00:00Z'));
    const pm = manager([daily('locked_data')], clock);
    const other = await admin.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1::bigint)', [
        partitionLockKey('public', 'locked_data').toString(),
      ]);
      const [table] = (await pm.maintain()).tables;
      expect(table).toMatchObject({ status: 'skipped', reason: 'locked', created: [], errors: [] });
      expect(await partitions('locked_data')).toEqual({});
      expect(pm.stats().skippedLocked).toBe(1);
      await other.query('SELECT pg_advisory_unlock($1::bigint)', [
        partitionLockKey('public', 'locked_data').toString(),
      ]);
    } finally {
      other.release();
    }
    const [after] = (await pm.maintain()).tables;
    expect(after?.status).toBe('done');
    expect(after?.created).toHaveLength(5);
  });

  it('a lock held by a long transaction makes a run fail fast with a retriable lock-timeout error', async () => {
    await createMarketData('busy_data');
    const clock = new Clock(new Date('2024-03-10T12:00:00Z'));
    const errors: PartitioningError[] = [];
    const pm = manager([daily('busy_data', { premake: 0 })], clock, {
      lockTimeoutMs: 50,
      lockRetries: 1,
      onError: (error) => errors.push(error),
    });
    const holder = await admin.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE busy_data IN ACCESS EXCLUSIVE MODE');
      const [table] = (await pm.maintain()).tables;
      expect(table?.status).toBe('failed');
      expect(table?.errors[0]).toMatchObject({ kind: 'lock-timeout', retriable: true });
      expect(table?.errors[0]?.message).toMatch(/within 50 ms \(lockTimeoutMs\), 2 attempt/);
      expect(errors).toHaveLength(1);
      await holder.query('ROLLBACK');
    } finally {
      holder.release();
    }
    expect(await partitions('busy_data')).toEqual({});
    const [after] = (await pm.maintain()).tables;
    expect(after?.created.map((c) => c.name)).toEqual(['busy_data_p20240310']);
  });

  it('concurrent maintain() calls share one run', async () => {
    await createMarketData('shared_run');
    const pm = manager(
      [daily('shared_run', { premake: 0 })],
      new Clock(new Date('2024-03-10T12:00:00Z')),
    );
    const [a, b] = await Promise.all([pm.maintain(), pm.maintain()]);
    expect(a).toBe(b);
    expect(pm.stats()).toMatchObject({ runs: 1, joined: 1 });
  });
});

describe('naming and bounds of other intervals', () => {
  it('monthly partitions on a timestamp key across a month end and a leap day', async () => {
    await sql('CREATE TABLE monthly_data (ts timestamp NOT NULL, v int) PARTITION BY RANGE (ts)');
    const pm = manager([], new Clock(new Date('2024-01-31T23:30:00Z')));
    const result = await pm.setup({
      table: 'monthly_data',
      column: 'ts',
      type: 'range',
      interval: 'monthly',
      premake: 2,
    });
    expect(result.created.map((c) => c.name)).toEqual([
      'monthly_data_p202401',
      'monthly_data_p202402',
      'monthly_data_p202403',
    ]);
    expect(await partitions('monthly_data')).toEqual({
      monthly_data_p202401: "FOR VALUES FROM ('2024-01-01 00:00:00') TO ('2024-02-01 00:00:00')",
      monthly_data_p202402: "FOR VALUES FROM ('2024-02-01 00:00:00') TO ('2024-03-01 00:00:00')",
      monthly_data_p202403: "FOR VALUES FROM ('2024-03-01 00:00:00') TO ('2024-04-01 00:00:00')",
    });
    await sql(
      `INSERT INTO monthly_data VALUES ('2024-02-29 23:59:59', 1), ('2024-03-01 00:00:00', 2)`,
    );
    const rows = await sql<{ part: string; v: number }>(
      'SELECT tableoid::regclass::text AS part, v FROM monthly_data ORDER BY v',
    );
    expect(rows).toEqual([
      { part: 'monthly_data_p202402', v: 1 },
      { part: 'monthly_data_p202403', v: 2 },
    ]);
  });

  it('hourly partitions across the end of a leap day', async () => {
    await sql('CREATE TABLE hourly_data (ts timestamptz NOT NULL) PARTITION BY RANGE (ts)');
    const pm = manager([], new Clock(new Date('2024-02-29T22:30:00Z')));
    await pm.setup({
      table: 'hourly_data',
      column: 'ts',
      type: 'range',
      interval: 'hourly',
      premake: 3,
    });
    expect(await partitions('hourly_data')).toEqual({
      hourly_data_p2024022922:
        "FOR VALUES FROM ('2024-02-29 22:00:00+00') TO ('2024-02-29 23:00:00+00')",
      hourly_data_p2024022923:
        "FOR VALUES FROM ('2024-02-29 23:00:00+00') TO ('2024-03-01 00:00:00+00')",
      hourly_data_p2024030100:
        "FOR VALUES FROM ('2024-03-01 00:00:00+00') TO ('2024-03-01 01:00:00+00')",
      hourly_data_p2024030101:
        "FOR VALUES FROM ('2024-03-01 01:00:00+00') TO ('2024-03-01 02:00:00+00')",
    });
    await sql(
      `INSERT INTO hourly_data VALUES ('2024-02-29 23:59:59+00'), ('2024-03-01 00:00:00+00')`,
    );
    expect(Object.values(await placement('hourly_data'))).toEqual([
      'hourly_data_p2024022923',
      'hourly_data_p2024030100',
    ]);
  });

  it('weekly partitions on a date key start on Monday; hourly on a date key is refused', async () => {
    await sql('CREATE TABLE weekly_data (d date NOT NULL) PARTITION BY RANGE (d)');
    const pm = manager([], new Clock(new Date('2024-02-29T12:00:00Z')));
    await pm.setup({
      table: 'weekly_data',
      column: 'd',
      type: 'range',
      interval: 'weekly',
      premake: 1,
    });
    expect(await partitions('weekly_data')).toEqual({
      weekly_data_p20240226: "FOR VALUES FROM ('2024-02-26') TO ('2024-03-04')",
      weekly_data_p20240304: "FOR VALUES FROM ('2024-03-04') TO ('2024-03-11')",
    });
    await expect(
      pm.setup({ table: 'weekly_data', column: 'd', type: 'range', interval: 'hourly' }),
    ).rejects.toMatchObject({
      kind: 'strategy-mismatch',
      message: expect.stringMatching(/is a date/),
    });
  });
});

describe('list and hash', () => {
  it('list setup creates one partition per value group and a DEFAULT, idempotently', async () => {
    await sql('CREATE TABLE regions (id int, region text) PARTITION BY LIST (region)');
    const pm = manager([], new Clock(new Date('2024-03-10T12:00:00Z')));
    const strategy: PartitionStrategy = {
      table: 'regions',
      column: 'region',
      type: 'list',
      listValues: [['us', 'ca'], ['eu'], ["o'brien", 'back\\slash']],
      default: true,
    };
    const result = await pm.setup(strategy);
    expect(result.created.map((c) => c.name)).toEqual([
      'regions_us_ca',
      'regions_eu',
      'regions_o_brien_back_slash',
      'regions_default',
    ]);
    expect(await partitions('regions')).toEqual({
      regions_default: 'DEFAULT',
      regions_eu: "FOR VALUES IN ('eu')",
      regions_o_brien_back_slash: "FOR VALUES IN ('o''brien', 'back\\slash')",
      regions_us_ca: "FOR VALUES IN ('us', 'ca')",
    });
    await sql(`INSERT INTO regions VALUES (1, 'ca'), (2, 'eu'), (3, $1), (4, $2), (5, 'mars')`, [
      "o'brien",
      'back\\slash',
    ]);
    const rows = await sql<{ id: number; part: string }>(
      'SELECT id, tableoid::regclass::text AS part FROM regions ORDER BY id',
    );
    expect(rows.map((r) => r.part)).toEqual([
      'regions_us_ca',
      'regions_eu',
      'regions_o_brien_back_slash',
      'regions_o_brien_back_slash',
      'regions_default',
    ]);
    expect((await pm.setup(strategy)).created).toEqual([]);
    expect((await pm.maintain()).tables[0]).toMatchObject({ status: 'done', created: [] });

    // A new group is added; a group that splits an existing partition is refused.
    const grown = await pm.setup({ ...strategy, listValues: [['us', 'ca'], ['eu'], ['apac']] });
    expect(grown.created.map((c) => c.name)).toEqual(['regions_apac']);
    await expect(pm.setup({ ...strategy, listValues: [['us']] })).rejects.toMatchObject({
      kind: 'overlap',
    });
  });

  it('hash setup creates modulus partitions; another modulus is a clear mismatch', async () => {
    await sql('CREATE TABLE accounts (id bigint PRIMARY KEY) PARTITION BY HASH (id)');
    const pm = manager([], new Clock(new Date('2024-03-10T12:00:00Z')));
    const result = await pm.setup({ table: 'accounts', column: 'id', type: 'hash', modulus: 4 });
    expect(result.created.map((c) => c.name)).toEqual([
      'accounts_h0',
      'accounts_h1',
      'accounts_h2',
      'accounts_h3',
    ]);
    expect((await partitions('accounts')).accounts_h2).toBe(
      'FOR VALUES WITH (modulus 4, remainder 2)',
    );
    await sql('INSERT INTO accounts SELECT g FROM generate_series(1, 200) g');
    const counts = await sql<{ part: string; n: number }>(
      'SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM accounts GROUP BY 1 ORDER BY 1',
    );
    expect(counts.map((c) => c.part)).toEqual([
      'accounts_h0',
      'accounts_h1',
      'accounts_h2',
      'accounts_h3',
    ]);
    expect(counts.reduce((sum, c) => sum + c.n, 0)).toBe(200);
    expect((await pm.maintain()).tables[0]?.created).toEqual([]);
    await expect(
      pm.setup({ table: 'accounts', column: 'id', type: 'hash', modulus: 8 }),
    ).rejects.toMatchObject({ kind: 'strategy-mismatch' });
  });
});

describe('identifiers and misconfiguration', () => {
  it('a schema, table and column with quotes and mixed case work, and nothing is injected', async () => {
    const schema = 'Trading "Desk"';
    const table = `Mkt"Data'); DROP TABLE victim;--`;
    await sql('CREATE TABLE victim (x int)');
    await sql(`CREATE SCHEMA "Trading ""Desk"""`);
    await sql(
      `CREATE TABLE "Trading ""Desk"""."Mkt""Data'); DROP TABLE victim;--" ("Trade ""TS""" timestamptz NOT NULL, v int) PARTITION BY RANGE ("Trade ""TS""")`,
    );
    const clock = new Clock(new Date('2024-03-10T12:00:00Z'));
    const strategy: PartitionStrategy = {
      schema,
      table,
      column: 'Trade "TS"',
      type: 'range',
      interval: 'daily',
      premake: 1,
      retention: { olderThan: 1, unit: 'days' },
      default: true,
    };
    const pm = manager([strategy], clock);
    await pm.setup(strategy);
    expect(Object.keys(await partitions(table, schema))).toEqual([
      `${table}_default`,
      `${table}_p20240310`,
      `${table}_p20240311`,
    ]);
    await sql(
      `INSERT INTO "Trading ""Desk"""."Mkt""Data'); DROP TABLE victim;--" VALUES ('2024-03-10T01:00:00Z', 1)`,
    );
    clock.advance(3);
    const [table1] = (await pm.maintain()).tables;
    expect(table1?.status).toBe('done');
    expect(table1?.dropped).toEqual([`${table}_p20240310`, `${table}_p20240311`]);
    expect(await exists('victim')).toBe(true);
    const report = await partitionReport(admin, schema, table);
    expect(report.partitions.map((p) => p.name)).toEqual([
      `${table}_p20240313`,
      `${table}_p20240314`,
      `${table}_default`,
    ]);
  });

  it('a table that is not partitioned gets a PgPulseError saying so', async () => {
    await sql('CREATE TABLE plain_table (ts timestamptz)');
    const errors: PartitioningError[] = [];
    const pm = manager([daily('plain_table')], new Clock(new Date('2024-03-10T12:00:00Z')), {
      onError: (e) => errors.push(e),
    });
    const [table] = (await pm.maintain()).tables;
    expect(table?.status).toBe('failed');
    const error = table?.errors[0];
    expect(error).toBeInstanceOf(PgPulseError);
    expect(error).toMatchObject({
      kind: 'not-partitioned',
      code: 'PGPULSE_PARTITION_NOT_PARTITIONED',
      table: '"public"."plain_table"',
    });
    expect(error?.message).toMatch(
      /"public"\."plain_table" is not a partitioned table \(it is a regular table\).*PARTITION BY RANGE \("ts"\)/,
    );
    expect(errors).toEqual([error]);
    await expect(pm.setup(daily('plain_table'))).rejects.toThrow(/is not a partitioned table/);
    expect(await partitions('plain_table')).toEqual({});
  });

  it('a missing table, another method or another key column are named', async () => {
    const pm = manager([], new Clock(new Date('2024-03-10T12:00:00Z')));
    await expect(pm.setup(daily('no_such_table'))).rejects.toMatchObject({
      kind: 'table-not-found',
      message: expect.stringMatching(/"public"\."no_such_table" does not exist/),
    });
    await sql('CREATE TABLE by_list (ts timestamptz, k text) PARTITION BY LIST (k)');
    await expect(pm.setup(daily('by_list'))).rejects.toThrow(
      /is partitioned by LIST, but the strategy says type 'range'/,
    );
    await sql('CREATE TABLE by_other (ts timestamptz, created date) PARTITION BY RANGE (created)');
    await expect(pm.setup(daily('by_other'))).rejects.toThrow(
      /partitioned by column "created", but the strategy says column "ts"/,
    );
    await sql('CREATE TABLE by_int (ts int) PARTITION BY RANGE (ts)');
    await expect(pm.setup(daily('by_int'))).rejects.toThrow(
      /"ts" of "public"\."by_int" is integer/,
    );
  });
});

describe('partitionReport', () => {
  it('lists partitions with bounds, row estimates and sizes', async () => {
    await createMarketData('reported');
    const pm = manager([], new Clock(new Date('2024-03-10T12:00:00Z')));
    await pm.setup(daily('reported', { premake: 2, default: true }));
    await sql(
      `INSERT INTO reported (ts, symbol, price)
         SELECT '2024-03-11T00:00:00Z'::timestamptz + (g || ' seconds')::interval, 'S' || g, 1
           FROM generate_series(1, 1000) g`,
    );
    await sql('ANALYZE reported');
    const report = await partitionReport(admin, 'public', 'reported');
    expect(report).toMatchObject({
      schema: 'public',
      table: 'reported',
      strategy: 'range',
      key: 'RANGE (ts)',
    });
    expect(report.partitions.map((p) => [p.name, p.isDefault])).toEqual([
      ['reported_p20240310', false],
      ['reported_p20240311', false],
      ['reported_p20240312', false],
      ['reported_default', true],
    ]);
    const p11 = report.partitions[1];
    expect(p11?.range).toEqual({
      from: new Date('2024-03-11T00:00:00Z'),
      to: new Date('2024-03-12T00:00:00Z'),
    });
    expect(p11?.bound).toBe(day(11));
    expect(p11?.rows).toBe(1000);
    expect(p11?.bytes).toBeGreaterThan(0);
    expect(report.partitions[3]?.range).toBeUndefined();
    expect(report.totalRows).toBe(1000);
    expect(report.totalBytes).toBeGreaterThanOrEqual(p11?.bytes ?? 0);
    await expect(partitionReport(admin, 'public', 'definitely_missing')).rejects.toBeInstanceOf(
      PartitioningError,
    );
  });
});
