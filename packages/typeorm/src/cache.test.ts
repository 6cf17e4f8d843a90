/**
 * TypeORM's own `cache` option on a pgpulse DataSource, served by pgpulse's query result cache
 * (no `query-result-cache` table). A hit is proven without counting server statements: the row
 * is changed straight on the primary (pgpulse does not see it), and the cached find keeps
 * returning the old value until a write through TypeORM drops the entry.
 */
import { type Cluster, ConfigError, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgPulseDataSource, type PgPulseDataSource } from './index.js';
import { ENTITIES, SCHEMA_SQL, UserAccount } from './test-support/entities.js';

describe('TypeORM: find({ cache }) and qb.cache() through the query result cache', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let ds: PgPulseDataSource;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query('primary', SCHEMA_SQL);
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      pool: { maxSize: 4 },
      // One instance: no channel (an unsubscribed one bounds the entries' age).
      cache: { maxBytes: 1 << 20, defaultTtlMs: 60_000, channel: false },
    });
    await cluster.ready();
    ds = await createPgPulseDataSource(cluster, { entities: ENTITIES }).initialize();
  });

  afterAll(async () => {
    if (ds?.isInitialized) await ds.destroy();
    await cluster?.close();
    await sandbox?.stop();
  });

  async function behindTheBack(name: string): Promise<void> {
    await sandbox.query('primary', 'UPDATE user_account SET name = $1 WHERE id = 1', [name]);
    await sandbox.waitForReplay();
  }

  /** Reads (each time as a new request) until the entry is stored; returns the last value. */
  async function stored<T>(read: () => Promise<T>): Promise<T> {
    let value: T | undefined;
    await waitUntil(
      async () => {
        value = await cluster.context(read);
        return cluster.cache.stats().entries > 0;
      },
      { timeoutMs: 30_000, message: 'the read was stored in the cache' },
    );
    return value as T;
  }

  const users = () => ds.getRepository(UserAccount);
  const cachedFind = () => users().findOne({ where: { id: 1 }, cache: 60_000 });

  it('find({ cache: ms }) serves the second read from the cache', async () => {
    await behindTheBack('seed-1');
    cluster.cache.clear();
    const first = await stored(cachedFind);
    const before = cluster.cache.stats();
    await behindTheBack('changed behind pgpulse');
    const second = await cluster.context(cachedFind);
    const after = cluster.cache.stats();

    expect(first?.name).toBe('seed-1');
    expect(second).toEqual(first); // the server has the new name: only a hit returns the old
    expect(after.hits - before.hits).toBe(1);
    expect(after.misses).toBe(before.misses);
    const live = await cluster.context(() => users().findOneBy({ id: 1 }));
    expect(live?.name).toBe('changed behind pgpulse');
    // TypeORM's own cache would have created its table on the primary.
    const [table] = await sandbox.query<{ t: string | null }>(
      'primary',
      `SELECT to_regclass('"query-result-cache"')::text AS t`,
    );
    expect(table?.t).toBeNull();
  });

  it('a write through TypeORM drops the entries of its table', async () => {
    await behindTheBack('seed-1');
    cluster.cache.clear();
    await stored(cachedFind);
    await behindTheBack('stale unless invalidated');
    expect((await cluster.context(cachedFind))?.name).toBe('seed-1');

    const invalidations = cluster.cache.stats().invalidations;
    await cluster.context(() => users().update({ id: 2 }, { balance: 7 }));
    expect(cluster.cache.stats().invalidations).toBeGreaterThan(invalidations);
    await sandbox.waitForReplay();
    expect((await cluster.context(cachedFind))?.name).toBe('stale unless invalidated');
  });

  it('qb.cache(id, ms), dropped by queryResultCache.remove([id])', async () => {
    await behindTheBack('seed-1');
    cluster.cache.clear();
    const read = () =>
      users()
        .createQueryBuilder('u')
        .where('u.id = :id', { id: 1 })
        .cache('user-1', 60_000)
        .getOne();
    await stored(read);
    await behindTheBack('behind again');
    expect((await cluster.context(read))?.name).toBe('seed-1');
    await ds.queryResultCache!.remove(['user-1']);
    expect((await cluster.context(read))?.name).toBe('behind again');
  });

  it('reads in a transaction are never cached', async () => {
    cluster.cache.clear();
    const before = cluster.cache.stats();
    const names = await cluster.context(() =>
      ds.transaction(async (manager) => {
        const options = { where: { id: 1 }, cache: 60_000 };
        const a = await manager.findOne(UserAccount, options);
        const b = await manager.findOne(UserAccount, options);
        return [a?.name, b?.name];
      }),
    );
    const after = cluster.cache.stats();
    expect(names[0]).toBe(names[1]);
    expect(after.hits).toBe(before.hits);
    expect(after.misses).toBe(before.misses);
    expect(after.entries).toBe(0);
    expect(after.bypasses - before.bypasses).toBeGreaterThanOrEqual(2);
  });

  it('find({ cache }) on a cluster without a cache is a ConfigError naming cache', async () => {
    const plain = createCluster({ primary: sandbox.primary.url, replicas: [] });
    const other = await createPgPulseDataSource(plain, { entities: ENTITIES }).initialize();
    try {
      const error = await other
        .getRepository(UserAccount)
        .findOne({ where: { id: 1 }, cache: 1_000 })
        .catch((err: unknown) => err);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues[0]!.field).toBe('cache');
      // Without the option the same find runs as before.
      expect((await other.getRepository(UserAccount).findOneBy({ id: 1 }))?.id).toBe(1);
    } finally {
      await other.destroy();
      await plain.close();
    }
  });
});
