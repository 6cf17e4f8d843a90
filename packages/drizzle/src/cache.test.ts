/**
 * drizzle reads through pgpulse's query result cache: `db.$cached(options)` and
 * `db.$cluster.cached(fn)`. A hit is proven without counting server statements: the row is
 * changed behind pgpulse's back (straight on the primary, so no invalidation), and the cached
 * read keeps returning the old value until a write through drizzle drops the entry.
 */
import { type Cluster, ConfigError, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { eq } from 'drizzle-orm';
import { integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgPulseDatabase, withPgPulse } from './index.js';

const items = pgTable('dz_cache_items', {
  id: integer('id').primaryKey(),
  name: text('name').notNull(),
  // mode 'string': drizzle's own parser hands the server's text back, so a hit must carry
  // drizzle's rows (pg's default parser would make a Date).
  at: timestamp('at', { withTimezone: true, mode: 'string' }).notNull(),
});
const schema = { items };

const DDL = `
  CREATE TABLE dz_cache_items (id int PRIMARY KEY, name text NOT NULL, at timestamptz NOT NULL);
  INSERT INTO dz_cache_items VALUES (1, 'one', '2025-01-02 14:30:00.123456+00'), (2, 'two', now());
`;

describe('drizzle: reads through the query result cache', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let db: PgPulseDatabase<typeof schema>;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query('primary', DDL);
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      pool: { maxSize: 4 },
      // No channel: this test is about one instance, and an unsubscribed channel would bound
      // the entries' age (a loaded machine could then turn a hit into a miss).
      cache: { maxBytes: 1 << 20, defaultTtlMs: 60_000, channel: false },
    });
    await cluster.ready();
    db = withPgPulse(cluster, { schema });
  });

  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  /** Changes the row without pgpulse seeing it, and waits until every replica has it. */
  async function behindTheBack(name: string): Promise<void> {
    await sandbox.query('primary', 'UPDATE dz_cache_items SET name = $1 WHERE id = 1', [name]);
    await sandbox.waitForReplay();
  }

  const readOne = (d: Pick<typeof db, 'select'>) => d.select().from(items).where(eq(items.id, 1));

  /**
   * Reads (each time in a new request) until the entry is stored. Right after a write through
   * pgpulse a replica's read is stored only once a probe proves the replica has the write.
   */
  async function stored<T>(read: () => PromiseLike<T>): Promise<T> {
    let value: T | undefined;
    await waitUntil(
      async () => {
        value = await cluster.context(async () => read());
        return cluster.cache.stats().entries > 0;
      },
      { timeoutMs: 30_000, message: 'the read was stored in the cache' },
    );
    return value as T;
  }

  it('$cached() serves the second read from the cache, with drizzle`s rows', async () => {
    await behindTheBack('one');
    cluster.cache.clear();
    const first = await stored(() => readOne(db.$cached({ ttlMs: 60_000 })));
    const before = cluster.cache.stats();
    await behindTheBack('changed behind pgpulse');
    const second = await cluster.context(() => readOne(db.$cached({ ttlMs: 60_000 })));
    const after = cluster.cache.stats();

    expect(first).toEqual([{ id: 1, name: 'one', at: '2025-01-02 14:30:00.123456+00' }]);
    // The server has the new name; only a cache hit can still return the old one.
    expect(second).toEqual(first);
    expect(after.hits - before.hits).toBe(1);
    expect(after.misses).toBe(before.misses);
    // Uncached, the same read sees the server's row.
    const live = await cluster.context(() => readOne(db));
    expect(live[0]!.name).toBe('changed behind pgpulse');
  });

  it('a write through drizzle drops the entries of its table', async () => {
    await behindTheBack('one');
    cluster.cache.clear();
    const cachedDb = db.$cached();
    await stored(() => readOne(cachedDb));
    await behindTheBack('stale unless invalidated');
    const hit = await cluster.context(() => readOne(cachedDb));
    expect(hit[0]!.name).toBe('one');

    const invalidations = cluster.cache.stats().invalidations;
    // Another row of the same table, in another request: the entry must still go.
    await cluster.context(() => db.update(items).set({ name: 'two!' }).where(eq(items.id, 2)));
    expect(cluster.cache.stats().invalidations).toBeGreaterThan(invalidations);
    await sandbox.waitForReplay();
    const fresh = await cluster.context(() => readOne(cachedDb));
    expect(fresh[0]!.name).toBe('stale unless invalidated');
  });

  it('db.$cluster.cached(fn) caches the drizzle reads made inside fn', async () => {
    await behindTheBack('one');
    cluster.cache.clear();
    const read = () => db.$cluster.cached(() => readOne(db), { tags: ['item:1'] });
    await stored(read);
    const hits = cluster.cache.stats().hits;
    await behindTheBack('behind again');
    expect((await cluster.context(read))[0]!.name).toBe('one');
    expect(cluster.cache.stats().hits).toBe(hits + 1);
    cluster.cache.invalidate({ tags: ['item:1'] });
    expect((await cluster.context(read))[0]!.name).toBe('behind again');
  });

  it('reads in a transaction are never cached', async () => {
    cluster.cache.clear();
    const before = cluster.cache.stats();
    const names = await cluster.context(() =>
      db.$cached().transaction(async (tx) => {
        const a = await readOne(tx);
        const b = await readOne(tx);
        return [a[0]!.name, b[0]!.name];
      }),
    );
    const after = cluster.cache.stats();
    expect(names[0]).toBe(names[1]);
    expect(after.hits).toBe(before.hits);
    expect(after.misses).toBe(before.misses);
    expect(after.entries).toBe(0);
    expect(after.bypasses - before.bypasses).toBeGreaterThanOrEqual(2);
  });

  it('$cached() on a cluster without a cache is a ConfigError naming cache', async () => {
    const plain = createCluster({ primary: sandbox.primary.url, replicas: [] });
    try {
      const error = (() => {
        try {
          withPgPulse(plain).$cached();
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues[0]!.field).toBe('cache');
      expect(() => db.$cached({ ttlMs: 0 })).toThrow(/cache\.ttlMs/);
    } finally {
      await plain.close();
    }
  });
});
