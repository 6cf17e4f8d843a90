import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

/**
 * Two app instances (two clusters) on one sandbox: B's writes reach A's cache through
 * LISTEN/NOTIFY on the primary. A is given the primary only, so an old value A returns can
 * only have come from its cache (not from a lagging replica).
 */
describe('query result cache across instances', () => {
  let sandbox: SandboxCluster;
  let a: Cluster;
  let b: Cluster;
  const KEYS = ['k1', 'k2', 'k3', 'k4', 'k5'];

  /** Polls until `check` holds; the deadline guards against a hang, never times the cache. */
  const until = async (check: () => boolean | Promise<boolean>, what: string, ms = 10_000) => {
    await waitUntil(check, { timeoutMs: ms, message: `timed out waiting for ${what}` });
  };

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query(
      'primary',
      `CREATE TABLE kv (k text PRIMARY KEY, v int NOT NULL);
       INSERT INTO kv SELECT 'k' || g, 0 FROM generate_series(1, 5) g;`,
    );
    await sandbox.waitForReplay();
    const cache = { maxBytes: 4 * 1024 * 1024, defaultTtlMs: 600_000, unsubscribedMaxAgeMs: 300 };
    a = createCluster({ primary: sandbox.primary.url, health: { intervalMs: 50 }, cache });
    b = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 50 },
      cache,
    });
    await Promise.all([a.ready(), b.ready()]);
    await until(() => a.cache.subscribed() && b.cache.subscribed(), 'both subscriptions');
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await sandbox?.stop();
  });

  /** A's read, cached, in a fresh context (A never writes: any entry may serve it). */
  const readA = (sql: string, params: unknown[]) =>
    a.context(() => a.cached(async () => (await a.pool.query(sql, params)).rows[0]));

  it("A's cached read returns B's committed value once B's message arrives (ms); 0 stale over 1,000 randomized rounds", async () => {
    const rng = seeded(13);
    const values = new Map(KEYS.map((k) => [k, 0]));
    let stale = 0;
    let backwards = 0;
    const latencies: number[] = [];
    const hitsBefore = a.cache.stats().hits;
    let lastCommitAt = Number.NEGATIVE_INFINITY;
    /** B's messages sent up to its last write: once A heard as many, no old value may show. */
    let told = b.cache.channelStats().sent;
    let late = 0;
    /**
     * Reads until `want` shows; the ms after the last commit it took. Stale: the old value from
     * a read begun after A heard B's message for the write (the invariant); late: the new
     * value took over 100 ms after the commit (a figure: on a loaded machine the message
     * itself can take that long).
     */
    const settle = async (sql: string, params: unknown[], want: number) => {
      for (;;) {
        const heard = a.cache.channelStats().heard >= told;
        const startedAt = performance.now();
        const row = await readA(sql, params);
        if (row.v === want) {
          const ms = performance.now() - lastCommitAt;
          if (startedAt - lastCommitAt > 100) late++;
          return ms;
        }
        if (heard) {
          stale++;
          return undefined;
        }
        if (startedAt - lastCommitAt > 10_000) throw new Error('the write was never heard');
        // A hit is answered without I/O: let the socket that carries the notification be read
        // (an app's next request arrives through I/O too).
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    for (let round = 1; round <= 1000; round++) {
      const key = KEYS[Math.floor(rng() * KEYS.length)] as string;
      // Two shapes of read: one row, and an aggregate over the table.
      const bySum = rng() < 0.3;
      const sql = bySum ? 'SELECT sum(v)::int AS v FROM kv' : 'SELECT v FROM kv WHERE k = $1';
      const params = bySum ? [] : [key];
      const expected = () =>
        bySum ? [...values.values()].reduce((s, v) => s + v, 0) : (values.get(key) as number);
      // A caches the current value (and serves it once more from the cache). The previous
      // round's commit may be less than 100 ms old: its notification may still be on its way.
      await settle(sql, params, expected());
      await settle(sql, params, expected());
      // B changes it: autocommit, an upsert, or a transaction whose write counts at COMMIT.
      values.set(key, round);
      const mode = Math.floor(rng() * 3);
      if (mode === 0) await b.pool.query('UPDATE kv SET v = $2 WHERE k = $1', [key, round]);
      else if (mode === 1)
        await b.pool.query(
          'INSERT INTO kv VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v',
          [key, round],
        );
      else {
        const client = await b.pool.connect();
        try {
          await client.query('BEGIN');
          await client.query('UPDATE kv SET v = $2 WHERE k = $1', [key, round]);
          if (rng() < 0.5) await client.query('SELECT v FROM kv WHERE k = $1', [key]);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      }
      const committedAt = performance.now();
      // B tells the others right after the commit; the test only notes when it has.
      const sentBefore = told;
      while (b.cache.channelStats().sent <= sentBefore) await new Promise((r) => setImmediate(r));
      told = b.cache.channelStats().sent;
      // Random jitter in the workload (sometimes A reads at once, sometimes a little later).
      if (rng() < 0.2) await new Promise((r) => setTimeout(r, Math.floor(rng() * 3)));
      // A reads until the new value shows; a read begun 100 ms after the commit that still
      // returns the old value is stale.
      lastCommitAt = committedAt;
      const latency = await settle(sql, params, expected());
      if (latency !== undefined) latencies.push(latency);
      // Once new, never old again (the entry stored now must be the new one).
      const again = (await readA(sql, params)).v;
      if (again !== expected()) backwards++;
    }
    latencies.sort((x, y) => x - y);
    const at = (q: number) => latencies[Math.floor(q * (latencies.length - 1))]?.toFixed(1);
    console.log(
      `cache across instances: 1000 rounds, stale ${stale}, backwards ${backwards}, ` +
        `rounds over 100 ms ${late}, ` +
        `visible after commit p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms, ` +
        `A hits ${a.cache.stats().hits - hitsBefore}`,
    );
    expect(stale).toBe(0);
    expect(backwards).toBe(0);
    expect(a.cache.channelStats().heard).toBeGreaterThanOrEqual(1000);
    // The cache was in play: every round's second read (at least) was a hit.
    expect(a.cache.stats().hits - hitsBefore).toBeGreaterThanOrEqual(1000);
  }, 180_000);

  it('invalidate() by tags reaches the other instance, also past the 8000-byte NOTIFY limit', async () => {
    const tagged = () =>
      a.context(() =>
        a.cached(async () => (await a.pool.query("SELECT v FROM kv WHERE k = 'k1'")).rows[0].v, {
          tags: ['t-last'],
        }),
      );
    const start = await tagged();
    await until(async () => {
      const hits = a.cache.stats().hits;
      await tagged();
      return a.cache.stats().hits > hits;
    }, 'the tagged entry');
    await sandbox.query('primary', "UPDATE kv SET v = v + 1 WHERE k = 'k1'"); // behind pgpulse
    expect(await tagged()).toBe(start);
    // 1,500 tags of ~10 bytes: more than one NOTIFY payload holds.
    const tags = [...Array.from({ length: 1500 }, (_, i) => `tag-${i}-xx`), 't-last'];
    b.cache.invalidate({ tags });
    await until(async () => (await tagged()) === start + 1, 'the tag invalidation');
  });

  it('while not subscribed, entries are not served past the bound; it resubscribes after a primary restart', async () => {
    const read = () => readA("SELECT v FROM kv WHERE k = 'k2'", []);
    await read();
    const hits = a.cache.stats().hits;
    await read();
    expect(a.cache.stats().hits).toBe(hits + 1);
    await sandbox.stopNode('primary');
    try {
      await until(() => !a.cache.subscribed(), 'the subscription to end');
      // Past unsubscribedMaxAgeMs (300) the entry is not served: the read needs the primary
      // (A has no replica), which is down, so it fails rather than answer from the cache.
      await new Promise((r) => setTimeout(r, 350));
      const before = a.cache.stats().hits;
      await read().catch(() => undefined);
      expect(a.cache.stats().hits).toBe(before);
    } finally {
      await sandbox.start('primary');
    }
    await until(() => a.cache.subscribed() && b.cache.subscribed(), 'resubscription', 20_000);
    // Notifications flow again: B's write reaches A's entry.
    let old = 0;
    await until(
      () =>
        read().then(
          (row) => {
            old = row.v as number;
            return true;
          },
          () => false,
        ),
      "A's primary back",
      20_000,
    );
    await read();
    await until(
      () =>
        b.pool.query("UPDATE kv SET v = $1 WHERE k = 'k2'", [old + 100]).then(
          () => true,
          () => false,
        ),
      "B's primary back",
      20_000,
    );
    await until(async () => (await read()).v === old + 100, "B's write after the restart");
  });
});

/** A small deterministic generator (mulberry32): the same rounds on every run. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
