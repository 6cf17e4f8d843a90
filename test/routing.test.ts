import { inspect } from 'node:util';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  ConfigError,
  createCluster,
  PoolTimeoutError,
} from '../packages/core/src/index.js';

/** Runs `fn` and reports which node's statement counter moved (pgpulse's view). */
async function servedBy(cluster: Cluster, fn: () => Promise<unknown>): Promise<string[]> {
  const before = new Map(cluster.stats().nodes.map((n) => [n.name, n.counters.queries]));
  await fn().catch(() => {});
  return cluster
    .stats()
    .nodes.filter((n) => n.counters.queries > (before.get(n.name) ?? 0))
    .map((n) => n.role);
}

const READS = [
  'SELECT 1',
  'select * from accounts',
  'SELECT id, balance FROM accounts WHERE id = 1',
  'SELECT count(*) FROM accounts',
  'SELECT lower(owner), upper(owner) FROM accounts',
  'SELECT a.id FROM accounts a JOIN accounts b ON a.id = b.id',
  'SELECT * FROM accounts ORDER BY id LIMIT 2 OFFSET 1',
  'SELECT owner, sum(balance) FROM accounts GROUP BY owner HAVING sum(balance) > 0',
  'SELECT * FROM accounts WHERE id IN (SELECT id FROM accounts WHERE balance > 10)',
  'SELECT EXISTS (SELECT 1 FROM accounts)',
  'WITH rich AS (SELECT * FROM accounts WHERE balance > 50) SELECT count(*) FROM rich',
  'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT sum(i) FROM n',
  'SELECT 1 UNION SELECT 2',
  'SELECT id FROM accounts INTERSECT SELECT id FROM accounts',
  'VALUES (1, 2), (3, 4)',
  'TABLE accounts',
  'SHOW server_version',
  'SHOW transaction_isolation',
  'EXPLAIN SELECT * FROM accounts',
  'EXPLAIN (FORMAT JSON) SELECT * FROM accounts WHERE id = 1',
  'EXPLAIN ANALYZE SELECT * FROM accounts',
  'SELECT now(), current_timestamp, clock_timestamp()',
  'SELECT random()',
  'SELECT pg_sleep(0)',
  "SELECT json_build_object('a', 1)",
  'SELECT * FROM pg_stat_activity LIMIT 1',
  'SELECT version()',
  "SELECT current_setting('work_mem')",
  'SELECT pg_is_in_recovery()',
  'SELECT "id", "owner" FROM "accounts" WHERE "accounts"."id" = $1',
  'SELECT "public"."accounts"."id" FROM "public"."accounts" WHERE ("public"."accounts"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3',
  'SELECT "Account"."id" AS "Account_id" FROM "accounts" "Account" WHERE "Account"."id" IN ($1)',
  'SELECT account_owner(1)',
  '/* pgpulse:replica */ SELECT 1',
  "SELECT * FROM accounts WHERE owner LIKE 'a%'",
  'SELECT id FROM accounts WHERE balance BETWEEN 1 AND 100',
];

const WRITES = [
  "INSERT INTO accounts (owner, balance) VALUES ('w', 1)",
  "INSERT INTO accounts (owner, balance) VALUES ('w', 1) RETURNING id",
  "INSERT INTO accounts (id, owner, balance) VALUES (1, 'a', 10) ON CONFLICT (id) DO UPDATE SET balance = accounts.balance",
  'UPDATE accounts SET balance = balance WHERE id = 1',
  "DELETE FROM accounts WHERE owner = 'nobody'",
  'MERGE INTO accounts t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET balance = t.balance',
  'WITH moved AS (UPDATE accounts SET balance = balance WHERE id = 1 RETURNING *) SELECT * FROM moved',
  "WITH gone AS (DELETE FROM accounts WHERE owner = 'nobody' RETURNING *) SELECT count(*) FROM gone",
  "SELECT * FROM (WITH x AS (INSERT INTO audit (note) VALUES ('cte') RETURNING id) SELECT * FROM x) sub",
  'SELECT * FROM accounts WHERE id = 1 FOR UPDATE',
  'SELECT * FROM accounts WHERE id = 1 FOR NO KEY UPDATE',
  'SELECT * FROM accounts WHERE id = 1 FOR SHARE',
  'SELECT * FROM accounts WHERE id = 1 FOR KEY SHARE',
  'SELECT * FROM accounts FOR UPDATE SKIP LOCKED',
  'SELECT 1 UNION ALL (SELECT 1 FROM accounts FOR UPDATE)',
  'SELECT * INTO TEMP copy_of_accounts FROM accounts',
  "SELECT nextval('audit_id_seq')",
  "SELECT setval('audit_id_seq', 100)",
  'SELECT txid_current()',
  'SELECT pg_current_xact_id()',
  'SELECT pg_advisory_xact_lock(42)',
  "SELECT pg_notify('chan', 'x')",
  'SELECT bump_counter()',
  'SELECT public.bump_counter()',
  'SELECT 1; SELECT 2',
  'SELECT * FROM accounts; DELETE FROM audit WHERE false',
  'SELEC broken sql',
  'this is not sql at all',
  'SELECT 1 /* pgpulse:primary */',
  '/* pgpulse:replica */ DELETE FROM audit WHERE false',
  'CREATE TABLE IF NOT EXISTS scratch (id int)',
  'ALTER TABLE scratch ADD COLUMN IF NOT EXISTS note text',
  'CREATE INDEX IF NOT EXISTS scratch_id ON scratch (id)',
  'DROP INDEX IF EXISTS scratch_id',
  'TRUNCATE scratch',
  'ANALYZE accounts',
  'VACUUM scratch',
  'REFRESH MATERIALIZED VIEW account_totals',
  "COMMENT ON TABLE scratch IS 'x'",
  'GRANT SELECT ON accounts TO PUBLIC',
  "NOTIFY chan, 'x'",
  'EXPLAIN ANALYZE UPDATE accounts SET balance = balance WHERE id = 1',
  'CALL noop_proc()',
  'DO $$ BEGIN PERFORM 1; END $$',
  'LOCK TABLE accounts',
  'CREATE TEMP TABLE t_tmp (id int)',
  'LISTEN chan',
];

describe('routing through cluster.pool on a 1 + 2 sandbox', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let password: string;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    password = new URL(sandbox.primary.url).password;
    await sandbox.query(
      'primary',
      `CREATE TABLE accounts (id serial PRIMARY KEY, owner text, balance int);
       CREATE TABLE audit (id serial PRIMARY KEY, note text);
       CREATE TABLE counter (n int); INSERT INTO counter VALUES (0);
       INSERT INTO accounts (owner, balance) SELECT 'a' || i, i * 10 FROM generate_series(1, 20) i;
       CREATE MATERIALIZED VIEW account_totals AS SELECT sum(balance) FROM accounts;
       CREATE FUNCTION bump_counter() RETURNS int LANGUAGE sql AS 'UPDATE counter SET n = n + 1 RETURNING n';
       CREATE FUNCTION account_owner(int) RETURNS text LANGUAGE sql STABLE AS 'SELECT owner FROM accounts WHERE id = $1';
       CREATE PROCEDURE noop_proc() LANGUAGE sql AS 'SELECT 1';`,
    );
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      pool: { maxSize: 4 },
      // This file tests routing by SQL alone; read-your-writes has its own tests.
      consistency: { level: 'eventual' },
    });
    await cluster.ready();
  });

  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  it('has at least 60 statements in the routing table', () => {
    expect(READS.length + WRITES.length).toBeGreaterThanOrEqual(60);
  });

  it.each(READS)('read goes to a replica: %s', async (sql) => {
    const params = sql.includes('$3') ? [1, 1, 0] : sql.includes('$1') ? [1] : undefined;
    expect(await servedBy(cluster, () => cluster.pool.query(sql, params))).toEqual(['replica']);
  });

  it.each(WRITES)('goes to the primary: %s', async (sql) => {
    expect(await servedBy(cluster, () => cluster.pool.query(sql))).toEqual(['primary']);
  });

  it('replicas really serve the reads (seen from PostgreSQL) and the primary the writes', async () => {
    const replicaPorts = new Set(sandbox.replicas.map((r) => r.port));
    const read = async () => {
      const { rows } = await cluster.pool.query<{ port: number; standby: boolean }>(
        'SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby',
      );
      return rows[0]!;
    };
    // The DDL in the table above makes pgpulse read the function catalog again; until it has,
    // a read that calls functions goes to the primary (the safe direction). Wait for that.
    const deadline = Date.now() + 10_000;
    while (!(await read()).standby && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (let i = 0; i < 10; i++) {
      const row = await read();
      expect(replicaPorts.has(row.port)).toBe(true);
      expect(row.standby).toBe(true);
    }
    const { rows } = await cluster.pool.query<{ port: number }>(
      'WITH w AS (INSERT INTO audit (note) VALUES ($1) RETURNING id) SELECT inet_server_port() AS port FROM w',
      ['seen'],
    );
    expect(rows[0]!.port).toBe(sandbox.primary.port);
  });

  it('a user function marked VOLATILE in the catalog runs on the primary and really writes', async () => {
    const before = await sandbox.query<{ n: number }>('primary', 'SELECT n FROM counter');
    await cluster.pool.query('SELECT bump_counter()');
    const after = await sandbox.query<{ n: number }>('primary', 'SELECT n FROM counter');
    expect(after[0]!.n).toBe(before[0]!.n + 1);
  });

  it('runs everything between BEGIN and COMMIT on one primary connection', async () => {
    const client = await cluster.pool.connect();
    const seen = new Set<string>();
    const record = async (sql: string) => {
      const { rows } = await client.query<{ at: string }>(`${sql}`);
      if (rows[0]?.at) seen.add(rows[0].at);
    };
    const at = "inet_server_port() || ':' || pg_backend_pid() AS at";
    await client.query('BEGIN');
    await record(`SELECT ${at}`);
    await client.query("INSERT INTO audit (note) VALUES ('tx')");
    await record(`SELECT ${at} FROM accounts WHERE id = 1 FOR UPDATE`);
    await record(`SELECT ${at}, count(*) FROM accounts`);
    await record(`SHOW server_version`);
    await record(`SELECT ${at}`);
    await client.query('COMMIT');
    expect(seen.size).toBe(1);
    expect([...seen][0]!.startsWith(`${sandbox.primary.port}:`)).toBe(true);
    // After COMMIT the client routes reads to replicas again.
    const { rows } = await client.query<{ port: number }>('SELECT inet_server_port() AS port');
    expect(rows[0]!.port).not.toBe(sandbox.primary.port);
    client.release();
  });

  it('pins a session change (SET) to its connection until release, then discards that connection', async () => {
    const client = await cluster.pool.connect();
    await client.query("SET application_name = 'pinned-by-set'");
    const a = await client.query<{ name: string; pid: number }>(
      "SELECT current_setting('application_name') AS name, pg_backend_pid() AS pid",
    );
    const b = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(a.rows[0]!.name).toBe('pinned-by-set');
    expect(b.rows[0]!.pid).toBe(a.rows[0]!.pid);
    client.release();
    // The connection with the changed setting is not handed to anyone else.
    await new Promise((r) => setTimeout(r, 100));
    const left = await sandbox.query(
      'primary',
      "SELECT 1 FROM pg_stat_activity WHERE application_name = 'pinned-by-set'",
    );
    expect(left).toEqual([]);
  });

  it('cluster.primary() sends reads to the primary', async () => {
    const { rows } = await cluster.primary(() =>
      cluster.pool.query<{ port: number }>('SELECT inet_server_port() AS port'),
    );
    expect(rows[0]!.port).toBe(sandbox.primary.port);
  });

  it('starts a lazy thenable (an ORM query builder) inside the scope it was returned from', async () => {
    const lazy = {
      // biome-ignore lint/suspicious/noThenProperty: a lazy thenable is exactly what this test needs.
      then<R>(resolve: (port: number) => R, reject: (err: unknown) => R) {
        return cluster.pool
          .query<{ port: number }>('SELECT inet_server_port() AS port')
          .then((r) => resolve(r.rows[0]!.port), reject);
      },
    };
    // Awaited only after primary() returned, as `await cluster.primary(() => db.select()...)` does.
    const served = await cluster.primary(() => lazy);
    expect(served).toBe(sandbox.primary.port);
  });

  it("supports pg's callback and config-object call forms", async () => {
    const viaCallback = await new Promise<number>((resolve, reject) => {
      cluster.pool.query('SELECT $1::int AS n', [7], (err: Error | null, res) =>
        err ? reject(err) : resolve(res!.rows[0].n),
      );
    });
    expect(viaCallback).toBe(7);
    const arrayMode = await cluster.pool.query({ text: 'SELECT 1 AS a, 2 AS b', rowMode: 'array' });
    expect(arrayMode.rows).toEqual([[1, 2]]);
  });

  it('never shows a password in stats, inspect, JSON or errors', async () => {
    expect(password.length).toBeGreaterThan(4);
    const dumps = [
      JSON.stringify(cluster.stats()),
      inspect(cluster, { depth: 6 }),
      JSON.stringify(cluster),
      inspect(cluster.config, { depth: 6 }),
    ];
    const err = await cluster.pool.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
    dumps.push(String(err), inspect(err));
    for (const dump of dumps) expect(dump).not.toContain(password);
  });

  it('counts routing reasons in stats()', () => {
    const { routing } = cluster.stats();
    expect(routing.replica).toBeGreaterThan(30);
    expect(routing['locking-clause']).toBeGreaterThanOrEqual(5);
    expect(routing['writable-cte']).toBeGreaterThanOrEqual(3);
    expect(routing['catalog-volatile']).toBeGreaterThanOrEqual(2);
  });
});

describe('balancing, failures and limits', () => {
  let sandbox: SandboxCluster;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
  });
  afterAll(async () => {
    await sandbox?.stop();
  });

  it('weighted replicas 1:2 receive 1/3 and 2/3 of 3,000 reads', async () => {
    const [r1, r2] = sandbox.replicas;
    const cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: [
        { ...urlParts(r1!.url), weight: 1 },
        { ...urlParts(r2!.url), weight: 2 },
      ],
      loadBalancing: 'weighted',
      consistency: { level: 'eventual' },
    });
    try {
      const ports = new Map<number, number>();
      for (let i = 0; i < 3000; i++) {
        const { rows } = await cluster.pool.query<{ port: number }>(
          'SELECT inet_server_port() AS port',
        );
        ports.set(rows[0]!.port, (ports.get(rows[0]!.port) ?? 0) + 1);
      }
      const share1 = (ports.get(r1!.port) ?? 0) / 3000;
      const share2 = (ports.get(r2!.port) ?? 0) / 3000;
      console.log(
        `weighted 1:2 over 3000 reads: ${(share1 * 100).toFixed(1)}% / ${(share2 * 100).toFixed(1)}%`,
      );
      expect(Math.abs(share1 - 1 / 3)).toBeLessThan(0.03);
      expect(Math.abs(share2 - 2 / 3)).toBeLessThan(0.03);
    } finally {
      await cluster.close();
    }
  });

  it('killing one of two replicas under read load gives the application no error and opens its breaker', async () => {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      circuitBreaker: { failureThreshold: 3, resetTimeoutMs: 500 },
      pool: { maxSize: 4 },
      consistency: { level: 'eventual' },
    });
    const errors: unknown[] = [];
    let reads = 0;
    let running = true;
    const worker = async () => {
      while (running) {
        try {
          await cluster.pool.query('SELECT inet_server_port()');
          reads++;
        } catch (err) {
          errors.push(err);
        }
      }
    };
    try {
      await cluster.ready();
      const workers = Array.from({ length: 4 }, worker);
      const replica1 = () => cluster.stats().nodes.find((n) => n.name === 'replica-1')!;
      await waitUntil(() => replica1().counters.queries > 0, {
        message: 'replica-1 served nothing',
      });
      await sandbox.kill('replica1');
      const stats = await waitUntil(
        () => {
          const now = replica1();
          return now.breaker !== 'closed' && now.counters.availabilityErrors >= 1 && now;
        },
        { timeoutMs: 20_000, message: "replica-1's breaker did not open" },
      );
      expect(stats.breaker).not.toBe('closed');
      expect(stats.counters.availabilityErrors).toBeGreaterThanOrEqual(1);
      await sandbox.start('replica1');
      await waitUntil(() => replica1().breaker === 'closed', {
        timeoutMs: 20_000,
        message: "replica-1's breaker did not close",
      });
      const before = replica1().counters.queries;
      await waitUntil(() => replica1().counters.queries > before, {
        timeoutMs: 20_000,
        message: 'replica-1 served no read after it came back',
      });
      running = false;
      await Promise.all(workers);
      const after = cluster.stats().nodes.find((n) => n.name === 'replica-1')!;
      console.log(
        `replica kill under load: ${reads} reads, ${errors.length} errors, retries=${cluster.stats().routing.retry ?? 0}`,
      );
      expect(errors).toEqual([]);
      expect(after.breaker).toBe('closed');
      expect(after.counters.queries).toBeGreaterThan(before);
    } finally {
      running = false;
      await cluster.close();
    }
  });

  it('when every replica is down, reads go to the primary rather than fail', async () => {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: [`postgres://postgres@127.0.0.1:1/postgres`],
      circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 60_000 },
    });
    try {
      for (let i = 0; i < 5; i++) {
        const { rows } = await cluster.pool.query<{ port: number }>(
          'SELECT inet_server_port() AS port',
        );
        expect(rows[0]!.port).toBe(sandbox.primary.port);
      }
      // The refused probe takes it out of rotation at once (#11 item 6), before any read tries it.
      expect(cluster.stats().nodes[1]!.up).toBe(false);
    } finally {
      await cluster.close();
    }
  });

  it('an exhausted pool fails with PoolTimeoutError at the acquire timeout, never before it and never hanging', async () => {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      pool: { maxSize: 2, overflow: 0, acquireTimeoutMs: 400 },
    });
    const holders = [await cluster.pool.connect(), await cluster.pool.connect()];
    try {
      for (const h of holders) await h.query('BEGIN');
      const t0 = performance.now();
      const err = await cluster.pool
        .query('INSERT INTO nothing VALUES (1)')
        .catch((e: unknown) => e);
      const elapsed = performance.now() - t0;
      expect(err).toBeInstanceOf(PoolTimeoutError);
      expect(String(err)).toContain('primary');
      expect(elapsed).toBeGreaterThanOrEqual(390);
      // An upper bound that holds on a loaded machine: the deadline fires, nothing waits on.
      expect(elapsed).toBeLessThan(5_000);
    } finally {
      for (const h of holders) {
        await h.query('ROLLBACK');
        h.release();
      }
      await cluster.close();
    }
  });

  it('readWriteSplit: false sends reads to the primary', async () => {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      readWriteSplit: false,
    });
    try {
      const { rows } = await cluster.pool.query<{ port: number }>(
        'SELECT inet_server_port() AS port',
      );
      expect(rows[0]!.port).toBe(sandbox.primary.port);
    } finally {
      await cluster.close();
    }
  });

  it.each([
    [{}, 'primary'],
    [{ primary: 'postgres://h/db', pool: { maxSize: -1 } }, 'pool.maxSize'],
    [{ primary: 'postgres://h/db', pool: { minSize: -2 } }, 'pool.minSize'],
    [{ primary: 'postgres://h/db', loadBalancing: 'random' }, 'loadBalancing'],
    [{ primary: 'postgres://h/db', replicas: [{ host: 'r', weight: 0 }] }, 'replicas.0.weight'],
  ])('bad config %j names the field %s', (config, field) => {
    let thrown: unknown;
    try {
      createCluster(config as never);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).issues.map((i) => i.field)).toContain(field);
    expect((thrown as Error).message).toContain(field);
  });
});

function urlParts(url: string) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port),
    user: u.username,
    password: u.password,
    database: 'postgres',
  };
}
