import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  ConfigError,
  createCluster,
  parseConfig,
} from '../packages/core/src/index.js';

/** Statements pgpulse sent to any node (its own counters), around `fn`. */
async function sent(cluster: Cluster, fn: () => Promise<unknown>): Promise<number> {
  const count = () => cluster.stats().nodes.reduce((n, node) => n + node.counters.queries, 0);
  const before = count();
  await fn();
  return count() - before;
}

describe('cache config', () => {
  const primary = 'postgres://u:secret@localhost:5432/db';
  it('is off unless the section is given', () => {
    expect(parseConfig({ primary }).cache.enabled).toBe(false);
    const on = parseConfig({ primary, cache: { maxBytes: 1_000_000 } }).cache;
    expect(on).toMatchObject({ enabled: true, maxBytes: 1_000_000, defaultTtlMs: 30_000 });
  });

  it('names the bad field with a dotted path and a did-you-mean', () => {
    const err = (() => {
      try {
        parseConfig({ primary, cache: { maxByte: 10, defaultTtlMs: -1 } });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    const fields = (err as ConfigError).issues.map((i) => i.field);
    expect(fields).toContain('cache.defaultTtlMs');
    expect((err as ConfigError).message).toMatch(/maxBytes/);
    expect(() => parseConfig({ primary, cache: { maxBytes: 10, maxEntryBytes: 20 } })).toThrow(
      /cache\.maxEntryBytes/,
    );
  });
});

describe('query result cache (one instance)', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });

  const value = async (sql = 'SELECT v FROM kv WHERE k = $1', k = 'a') =>
    (await cluster.pool.query(sql, [k])).rows[0]?.v as number | undefined;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query(
      'primary',
      `CREATE TABLE kv (k text PRIMARY KEY, v int);
       CREATE TABLE other (k text PRIMARY KEY, v int);
       INSERT INTO kv VALUES ('a', 1), ('b', 1);
       INSERT INTO other VALUES ('a', 1);
       CREATE SEQUENCE seq;
       CREATE FUNCTION bump() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 1';
       CREATE FUNCTION kv_of(text) RETURNS int LANGUAGE sql STABLE AS 'SELECT v FROM kv WHERE k = $1';
       CREATE TABLE vt (k text PRIMARY KEY, v int);
       INSERT INTO vt VALUES ('a', 20);
       CREATE VIEW vt_view AS SELECT k, v FROM vt;`,
    );
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 50 },
      // One instance: no channel, so a heartbeat slowed by a loaded machine cannot cap entry
      // ages here (cache-instances.test.ts covers the channel).
      cache: { maxBytes: 4 * 1024 * 1024, defaultTtlMs: 60_000, channel: false },
      telemetry: { tracerProvider },
    });
    await cluster.ready();
  });

  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  /** Runs fn as a fresh context (no writes of its own, so any entry may serve it), cached. */
  const fresh = <T>(fn: () => Promise<T>) => cluster.context(() => cluster.cached(fn));

  /**
   * Reads until the entry is stored and served: right after a write, a read is stored only once
   * the probes prove its node had replayed that write (a bounded wait, never a speed check).
   */
  const untilCached = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (let i = 0; i < 200; i++) {
      const hits = cluster.cache.stats().hits;
      const result = await fresh(fn);
      if (cluster.cache.stats().hits > hits) return result;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('the entry was never stored');
  };

  /** Changes the row behind pgpulse's back: only a cache hit can still return the old value. */
  const sneak = async (v: number, table = 'kv') => {
    await sandbox.query('primary', `UPDATE ${table} SET v = ${v} WHERE k = 'a'`);
    await sandbox.waitForReplay();
  };

  it('serves a cached() read from the cache and counts it', async () => {
    cluster.cache.clear();
    await sneak(1);
    const before = cluster.cache.stats();
    expect(await cluster.cached(() => value())).toBe(1);
    await sneak(2);
    let again: number | undefined;
    expect(await sent(cluster, async () => (again = await cluster.cached(() => value())))).toBe(0);
    expect(again).toBe(1);
    // Outside cached() nothing is cached.
    expect(await value()).toBe(2);
    const after = cluster.cache.stats();
    expect(after.hits - before.hits).toBe(1);
    expect(after.misses - before.misses).toBe(1);
    expect(after.entries).toBeGreaterThan(0);
    expect(after.bytes).toBeGreaterThan(0);
  });

  it('serves a read with the SQL hint from the cache, keyed by its parameters', async () => {
    cluster.cache.clear();
    await sneak(3);
    const sql = '/* pgpulse:cache ttl=30s */ SELECT v FROM kv WHERE k = $1';
    expect(await value(sql)).toBe(3);
    expect(await value(sql, 'b')).toBe(1);
    await sneak(4);
    expect(await value(sql)).toBe(3);
    // The same words in a string literal are not a hint.
    const literal = "SELECT v, '/* pgpulse:cache */' AS s FROM kv WHERE k = $1";
    expect(await value(literal)).toBe(4);
    await sneak(5);
    expect(await value(literal)).toBe(5);
  });

  it('never caches in a transaction, FOR UPDATE, volatile or session-dependent reads, or writes', async () => {
    cluster.cache.clear();
    const bypassesBefore = cluster.cache.stats().bypasses;
    const twice = async (sql: string, params: unknown[] = []) =>
      sent(cluster, () =>
        cluster.cached(async () => {
          await cluster.pool.query(sql, params);
          await cluster.pool.query(sql, params);
        }),
      );
    expect(await twice("SELECT v FROM kv WHERE k = 'a' FOR UPDATE")).toBe(2);
    expect(await twice("SELECT v FROM kv WHERE k = 'a' FOR SHARE")).toBe(2);
    expect(await twice('SELECT random()')).toBe(2);
    // A user function the catalog marks volatile.
    expect(await twice('SELECT bump()')).toBe(2);
    expect(await twice("INSERT INTO other VALUES ('w', 1) ON CONFLICT DO NOTHING")).toBe(2);
    expect(await twice("SELECT nextval('seq')")).toBe(2);
    expect(await twice('SELECT now()')).toBe(2);
    expect(await twice('SELECT current_user')).toBe(2);
    expect(await twice("SELECT current_setting('work_mem')")).toBe(2);
    expect(await twice('SHOW work_mem')).toBe(2);
    expect(await twice("UPDATE kv SET v = v WHERE k = 'b' RETURNING v")).toBe(2);
    expect(
      await twice("WITH u AS (UPDATE kv SET v = v WHERE k = 'b' RETURNING v) SELECT * FROM u"),
    ).toBe(2);
    const client = await cluster.pool.connect();
    try {
      const inTx = await sent(cluster, () =>
        cluster.cached(async () => {
          await client.query('BEGIN');
          await client.query("SELECT v FROM kv WHERE k = 'a'");
          await client.query("SELECT v FROM kv WHERE k = 'a'");
          await client.query('/* pgpulse:cache */ SELECT v FROM kv WHERE k = $1', ['a']);
          await client.query('COMMIT');
        }),
      );
      expect(inTx).toBe(5);
    } finally {
      client.release();
    }
    expect(cluster.cache.stats().bypasses - bypassesBefore).toBeGreaterThanOrEqual(10);
    expect(cluster.cache.stats().entries).toBe(0);
  });

  it.each([
    ["UPDATE kv SET v = $1 WHERE k = 'a'", 'update'],
    ["INSERT INTO kv VALUES ('a', $1) ON CONFLICT (k) DO UPDATE SET v = excluded.v", 'upsert'],
    [
      "WITH w AS (UPDATE kv SET v = $1 WHERE k = 'a' RETURNING 1) SELECT count(*) FROM w",
      'writable CTE',
    ],
  ])('a write through pgpulse drops the entries of its table (%s)', async (write) => {
    cluster.cache.clear();
    const n = Math.floor(Math.random() * 1e6);
    await untilCached(() => value());
    const otherBefore = await untilCached(() => value('SELECT v FROM other WHERE k = $1'));
    await cluster.context(async () => {
      await cluster.pool.query(write, [n]);
      // The writer's own cached read sees its write (read-your-writes and invalidation).
      expect(await cluster.cached(() => value())).toBe(n);
    });
    // Any context: once replicas replayed the write, the new value is what gets cached.
    expect(await untilCached(() => value())).toBe(n);
    // An entry of another table stays.
    await sneak(otherBefore! + 1, 'other');
    expect(await fresh(() => value('SELECT v FROM other WHERE k = $1'))).toBe(otherBefore);
  });

  it('TRUNCATE and DDL drop entries', async () => {
    cluster.cache.clear();
    await cluster.pool.query("INSERT INTO other VALUES ('t', 1) ON CONFLICT DO NOTHING");
    const count = () =>
      cluster.cached(
        async () => (await cluster.pool.query('SELECT count(*)::int AS n FROM other')).rows[0].n,
      );
    expect(await count()).toBeGreaterThan(0);
    await cluster.pool.query('TRUNCATE other');
    expect(await count()).toBe(0);
    await cluster.pool.query("INSERT INTO other VALUES ('a', 1)");
    expect(await count()).toBe(1);
    const kv = await cluster.cached(() => value());
    await sneak(kv! + 1);
    await cluster.pool.query('CREATE TABLE IF NOT EXISTS ddl_probe (x int)');
    expect(await cluster.cached(() => value())).toBe(kv! + 1);
  });

  it("a transaction's writes drop entries at COMMIT (a read between may have cached the old rows)", async () => {
    cluster.cache.clear();
    const start = (await cluster.cached(() => value()))!;
    const client = await cluster.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("UPDATE kv SET v = $1 WHERE k = 'a'", [start + 1]);
      // Another context reads (and caches) the committed, old value meanwhile.
      expect(await cluster.context(() => cluster.cached(() => value()))).toBe(start);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await cluster.cached(() => value())).toBe(start + 1);
  });

  it('a read calling a user function is dropped by any write', async () => {
    cluster.cache.clear();
    const read = () =>
      cluster.cached(async () => (await cluster.pool.query("SELECT kv_of('a') AS v")).rows[0].v);
    const start = await read();
    await cluster.pool.query("UPDATE kv SET v = $1 WHERE k = 'a'", [start + 1]);
    expect(await read()).toBe(start + 1);
  });

  it('one query in flight per key; invalidate() by tables and tags', async () => {
    cluster.cache.clear();
    const slow = 'SELECT v FROM kv, generate_series(1, 20000) g WHERE k = $1 AND g = 20000';
    // A fresh context: the process-wide one wrote above, and entries older than its writes
    // are (rightly) not shared with it until a probe bounds them.
    const statsBefore = cluster.cache.stats();
    const ran = await sent(cluster, () =>
      cluster.context(() =>
        cluster.cached(() =>
          Promise.all(Array.from({ length: 20 }, () => cluster.pool.query(slow, ['a']))),
        ),
      ),
    );
    // On a red run, say which path the other statements took (bypassed, or a flight not shared).
    const statsAfter = cluster.cache.stats();
    expect(
      ran,
      `bypasses +${statsAfter.bypasses - statsBefore.bypasses}, misses +${statsAfter.misses - statsBefore.misses}, invalidations +${statsAfter.invalidations - statsBefore.invalidations}`,
    ).toBe(1);
    const tagged = () => cluster.context(() => cluster.cached(() => value(), { tags: ['kv-a'] }));
    // Stored only once the probes prove the node had replayed the writes above: wait for it.
    let v: number | undefined;
    for (let i = 0; i < 200 && v === undefined; i++) {
      const hits = cluster.cache.stats().hits;
      const got = await tagged();
      if (cluster.cache.stats().hits > hits) v = got;
      else await new Promise((r) => setTimeout(r, 25));
    }
    if (v === undefined) throw new Error('the tagged entry was never stored');
    await sneak(v + 1);
    expect(await tagged()).toBe(v);
    cluster.cache.invalidate({ tags: ['kv-a'] });
    expect(await tagged()).toBe(v + 1);
    await sneak(v + 2);
    cluster.cache.invalidate({ tables: ['public.kv'] });
    expect(await tagged()).toBe(v + 2);
    expect(cluster.cache.stats().invalidations).toBeGreaterThan(0);
  });

  it('spans say pgpulse.cache = hit | miss | bypass', async () => {
    cluster.cache.clear();
    await untilCached(() => value());
    exporter.reset();
    cluster.cache.clear();
    await fresh(() => value());
    await fresh(() => value());
    await cluster.cached(() => cluster.pool.query('SELECT random()'));
    const seen = exporter.getFinishedSpans().map((s) => s.attributes['pgpulse.cache']);
    expect(seen).toEqual(expect.arrayContaining(['miss', 'hit', 'bypass']));
  });

  it("a write to a view's table drops the cached reads of the view; a write through the view drops the table's", async () => {
    // Last, and on tables of its own: a write through pgpulse (through a view: to every table)
    // holds back storing later reads until the probes prove a replica replayed it.
    cluster.cache.clear();
    const viewValue = () => value('SELECT v FROM vt_view WHERE k = $1');
    const tableValue = () => value('SELECT v FROM vt WHERE k = $1');
    expect(await untilCached(viewValue)).toBe(20);
    // The read names only vt_view; the write names only vt. In a context of its own: the
    // process-wide session's writes would hold later tests' reads.
    await cluster.context(() => cluster.pool.query("UPDATE vt SET v = 21 WHERE k = 'a'"));
    await sandbox.waitForReplay();
    expect(await fresh(viewValue)).toBe(21);
    // And the other way: the table's cached read, then an UPDATE through the view.
    expect(await untilCached(tableValue)).toBe(21);
    await cluster.context(() => cluster.pool.query("UPDATE vt_view SET v = 22 WHERE k = 'a'"));
    await sandbox.waitForReplay();
    expect(await fresh(tableValue)).toBe(22);
  });
});
