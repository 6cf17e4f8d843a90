/**
 * Prisma reads through pgpulse's query result cache: `prisma.$cached(options)` and
 * `cluster.cached(fn)`. A hit is proven without counting server statements: the row is changed
 * straight on the primary (pgpulse does not see it), and the cached read keeps returning the
 * old value until a write through Prisma drops the entry.
 */
import { type Cluster, ConfigError, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_SQL } from '../test/fixtures.js';
import { PrismaClient } from '../test/generated/client.js';
import { pgpulseAdapter, withPgPulse } from './index.js';

function connect(cluster: Cluster) {
  return withPgPulse(cluster, new PrismaClient({ adapter: pgpulseAdapter(cluster) }));
}

describe('Prisma: reads through the query result cache', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let prisma: ReturnType<typeof connect>;

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
    prisma = connect(cluster);
  });

  afterAll(async () => {
    await prisma?.$disconnect();
    await cluster?.close();
    await sandbox?.stop();
  });

  async function behindTheBack(name: string): Promise<void> {
    await sandbox.query('primary', `UPDATE "User" SET name = $1 WHERE id = 1`, [name]);
    await sandbox.waitForReplay();
  }

  /** Reads (each time as a new request) until the entry is stored; returns the last value. */
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

  const cachedRead = () =>
    prisma.$cached({ ttlMs: 60_000 }).user.findFirst({ where: { id: 1 }, select: { name: true } });

  it('$cached() serves the second read from the cache', async () => {
    await behindTheBack('seed 1');
    cluster.cache.clear();
    const first = await stored(cachedRead);
    const before = cluster.cache.stats();
    await behindTheBack('changed behind pgpulse');
    const second = await cluster.context(cachedRead);
    const after = cluster.cache.stats();

    expect(first).toEqual({ name: 'seed 1' });
    expect(second).toEqual(first); // the server has the new name: only a hit returns the old
    expect(after.hits - before.hits).toBe(1);
    expect(after.misses).toBe(before.misses);
    const live = await cluster.context(() => prisma.user.findFirst({ where: { id: 1 } }));
    expect(live?.name).toBe('changed behind pgpulse');
  });

  it('a write through Prisma drops the entries of its table', async () => {
    await behindTheBack('seed 1');
    cluster.cache.clear();
    await stored(cachedRead);
    await behindTheBack('stale unless invalidated');
    expect((await cluster.context(cachedRead))?.name).toBe('seed 1');

    const invalidations = cluster.cache.stats().invalidations;
    await cluster.context(() => prisma.user.update({ where: { id: 2 }, data: { name: 'two' } }));
    expect(cluster.cache.stats().invalidations).toBeGreaterThan(invalidations);
    await sandbox.waitForReplay();
    expect((await cluster.context(cachedRead))?.name).toBe('stale unless invalidated');
  });

  it('cluster.cached(fn) caches the Prisma reads made inside fn, by tag', async () => {
    await behindTheBack('seed 1');
    cluster.cache.clear();
    const read = () =>
      cluster.cached(() => prisma.user.findUnique({ where: { id: 1 } }), { tags: ['user:1'] });
    await stored(read);
    const hits = cluster.cache.stats().hits;
    await behindTheBack('behind again');
    expect((await cluster.context(read))?.name).toBe('seed 1');
    expect(cluster.cache.stats().hits).toBe(hits + 1);
    cluster.cache.invalidate({ tags: ['user:1'] });
    expect((await cluster.context(read))?.name).toBe('behind again');
  });

  it('reads in a transaction are never cached', async () => {
    cluster.cache.clear();
    const before = cluster.cache.stats();
    const names = await cluster.context(() =>
      cluster.cached(() =>
        prisma.$transaction(async (tx) => {
          const a = await tx.$cached().user.findFirst({ where: { id: 1 } });
          const b = await tx.user.findFirst({ where: { id: 1 } });
          return [a?.name, b?.name];
        }),
      ),
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
    const other = connect(plain);
    try {
      let error: unknown;
      try {
        other.$cached();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues[0]!.field).toBe('cache');
      expect(() => prisma.$cached({ ttlMs: -1 })).toThrow(/cache\.ttlMs/);
    } finally {
      await other.$disconnect();
      await plain.close();
    }
  });
});
