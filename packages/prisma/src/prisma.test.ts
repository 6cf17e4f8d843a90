/**
 * Prisma 7 on pgpulse against a real primary + 2 streaming replicas: the scenario list of
 * issue 5. Where a statement ran is observed from PostgreSQL (pg_stat_statements on every node,
 * `inet_server_port()` in raw SQL) and from `cluster.stats()` deltas, never assumed.
 */
import { type Cluster, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  delayReplicas,
  email,
  observe,
  SCHEMA_SQL,
  sleep,
  undelayReplicas,
} from '../test/fixtures.js';
import { PrismaClient } from '../test/generated/client.js';
import { pgpulseAdapter, withPgPulse } from './index.js';

function connect(cluster: Cluster) {
  return withPgPulse(cluster, new PrismaClient({ adapter: pgpulseAdapter(cluster) }));
}

describe('Prisma 7 on pgpulse (1 primary + 2 replicas)', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let prisma: ReturnType<typeof connect>;
  let replicaPorts: Set<number>;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query('primary', SCHEMA_SQL);
    await sandbox.waitForReplay();
    replicaPorts = new Set(sandbox.replicas.map((r) => r.port));
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      pool: { maxSize: 4 },
      health: { intervalMs: 100 },
    });
    await cluster.ready();
    prisma = connect(cluster);
  });

  afterAll(async () => {
    await prisma?.$disconnect();
    await cluster?.close();
    await sandbox?.stop();
  });

  /**
   * Runs `fn` as one request (a `cluster.context()`, as an app's middleware would) and reports
   * where its statements ran. Statements outside any context share one process-wide context,
   * whose writes keep every unscoped read on the primary until the replicas have replayed them.
   */
  const served = <T>(fn: () => Promise<T>) =>
    observe(sandbox, cluster, () => cluster.context(async () => await fn()));

  it('withPgPulse takes the cluster first, and says so when given (client, cluster)', () => {
    const client = new PrismaClient({ adapter: pgpulseAdapter(cluster) });
    const swapped = withPgPulse as unknown as (a: unknown, b: unknown) => unknown;
    expect(() => swapped(client, cluster)).toThrow(/takes the cluster first: swap the arguments/);
  });

  it('model reads go to a replica', async () => {
    const seen = await served(async () => {
      const users = await prisma.user.findMany({
        include: { posts: true },
        orderBy: { id: 'asc' },
      });
      const first = await prisma.post.findFirst({ where: { published: false } });
      const count = await prisma.user.count();
      const sum = await prisma.post.aggregate({ _count: true, _max: { id: true } });
      const groups = await prisma.post.groupBy({ by: ['authorId'], _count: true });
      return { users, first, count, sum, groups };
    });
    expect(seen.result.users.length).toBeGreaterThanOrEqual(5);
    expect(seen.result.users[0]!.posts.length).toBeGreaterThan(0);
    expect(seen.result.groups.length).toBe(5);
    expect(seen.postgres).toEqual(['replica']);
    expect(seen.pgpulse).toEqual(['replica']);
    // findMany + include is two statements (users, then their posts): 6 in all.
    expect(seen.statements.replica).toBe(6);
  });

  it('concurrent findUnique calls, merged by Prisma into one statement, go to a replica', async () => {
    const seen = await served(() =>
      Promise.all([1, 2, 3].map((id) => prisma.user.findUnique({ where: { id } }))),
    );
    expect(seen.result.map((u) => u?.id)).toEqual([1, 2, 3]);
    expect(seen.statements).toEqual({ primary: 0, replica: 1 });
    expect(seen.pgpulse).toEqual(['replica']);
  });

  it('model writes go to the primary', async () => {
    const address = email('writes');
    const seen = await served(async () => {
      const user = await prisma.user.create({
        data: { email: address, posts: { create: [{ title: 'nested' }] } },
      });
      await prisma.user.update({ where: { id: user.id }, data: { name: 'updated' } });
      await prisma.user.upsert({
        where: { email: address },
        create: { email: address },
        update: { name: 'upserted' },
      });
      await prisma.post.createMany({ data: [{ title: 'many', authorId: user.id }] });
      await prisma.post.updateMany({ where: { authorId: user.id }, data: { published: true } });
      await prisma.post.deleteMany({ where: { authorId: user.id, title: 'many' } });
      return user;
    });
    expect(seen.postgres).toEqual(['primary']);
    expect(seen.pgpulse).toEqual(['primary']);
    const rows = await sandbox.query<{ name: string; posts: number }>(
      'primary',
      `SELECT name, (SELECT count(*)::int FROM "Post" WHERE "authorId" = $1 AND published) AS posts
       FROM "User" WHERE id = $1`,
      [seen.result.id],
    );
    expect(rows).toEqual([{ name: 'upserted', posts: 1 }]);
  });

  it('a read right after a write in the same request sees it (read-your-writes)', async () => {
    // Replicas apply every commit 3 s late: a read that goes to one too early is stale.
    await delayReplicas(sandbox, 3_000);
    try {
      const address = email('ryw');
      await cluster.withConsistency('read-your-writes', async () => {
        const user = await prisma.user.create({ data: { email: address } });
        // Control: an eventual read in the same request does hit a stale replica.
        const stale = await prisma.$replica().user.findUnique({ where: { id: user.id } });
        expect(stale).toBeNull();
        const mine = await prisma.user.findUnique({ where: { id: user.id } });
        expect(mine?.email).toBe(address);
        const list = await prisma.user.findMany({ where: { email: address } });
        expect(list.map((u) => u.id)).toEqual([user.id]);
      });
      // Another context that did not write keeps reading from replicas.
      const other = await served(() => prisma.user.count());
      expect(other.postgres).toEqual(['replica']);
    } finally {
      await undelayReplicas(sandbox);
    }
  });

  it('every statement of an interactive transaction runs on one primary connection, FOR UPDATE included', async () => {
    const address = email('tx');
    const user = await prisma.user.create({ data: { email: address } });
    const seen = await served(() =>
      prisma.$transaction(async (tx) => {
        const at = await tx.$queryRaw<{ port: number; pid: number; id: number }[]>`
          SELECT inet_server_port() AS port, pg_backend_pid() AS pid, id
          FROM "User" WHERE id = ${user.id} FOR UPDATE`;
        // The row lock is really held by this transaction on the primary.
        const lockError = await sandbox
          .query('primary', 'SELECT id FROM "User" WHERE id = $1 FOR UPDATE NOWAIT', [user.id])
          .then(
            () => undefined,
            (err: Error) => err.message,
          );
        const plain = await tx.$queryRaw<{ port: number; pid: number }[]>`
          SELECT inet_server_port() AS port, pg_backend_pid() AS pid`;
        const users = await tx.user.findMany({ where: { email: address } });
        await tx.user.update({ where: { id: user.id }, data: { name: 'in tx' } });
        const count = await tx.post.count();
        return { at: at[0], plain: plain[0], lockError, users, count };
      }),
    );
    const { at, plain, lockError, users } = seen.result;
    expect(at?.port).toBe(sandbox.primary.port);
    expect(plain).toEqual({ port: at?.port, pid: at?.pid });
    expect(lockError).toMatch(/could not obtain lock/);
    expect(users).toHaveLength(1);
    expect(seen.postgres).toEqual(['primary']);
    expect(seen.pgpulse).toEqual(['primary']);
    expect(seen.statements.primary).toBe(4);
  });

  it('a batch $transaction runs on the primary', async () => {
    const seen = await served(() =>
      prisma.$transaction([
        prisma.user.findMany({ take: 2 }),
        prisma.post.count(),
        prisma.$queryRaw<{ port: number }[]>`SELECT inet_server_port() AS port FROM "User" LIMIT 1`,
      ]),
    );
    const [users, , raw] = seen.result;
    expect(users).toHaveLength(2);
    expect(raw[0]?.port).toBe(sandbox.primary.port);
    expect(seen.postgres).toEqual(['primary']);
    expect(seen.pgpulse).toEqual(['primary']);
  });

  it('a writable CTE through $queryRaw and raw writes go to the primary', async () => {
    const user = await prisma.user.create({
      data: { email: email('raw'), posts: { create: [{ title: 'draft' }] } },
    });
    const seen = await served(async () => {
      const cte = await prisma.$queryRaw<{ port: number; n: number }[]>`
        WITH moved AS (UPDATE "Post" SET published = true WHERE "authorId" = ${user.id} RETURNING id)
        SELECT inet_server_port() AS port, count(*)::int AS n FROM moved`;
      const updated =
        await prisma.$executeRaw`UPDATE "User" SET name = ${'raw'} WHERE id = ${user.id}`;
      const unsafe = await prisma.$executeRawUnsafe(
        'UPDATE "User" SET name = name || $1 WHERE id = $2',
        '!',
        user.id,
      );
      return { cte: cte[0], updated, unsafe };
    });
    expect(seen.result).toEqual({
      cte: { port: sandbox.primary.port, n: 1 },
      updated: 1,
      unsafe: 1,
    });
    expect(seen.postgres).toEqual(['primary']);
    expect(seen.pgpulse).toEqual(['primary']);
    const rows = await sandbox.query('primary', 'SELECT name FROM "User" WHERE id = $1', [user.id]);
    expect(rows).toEqual([{ name: 'raw!' }]);
  });

  it('raw reads go to a replica', async () => {
    const seen = await served(async () => {
      const tagged = await prisma.$queryRaw<{ port: number; standby: boolean; n: number }[]>`
        SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby, count(*)::int AS n
        FROM "User" WHERE id > ${0}`;
      const unsafe = await prisma.$queryRawUnsafe<{ port: number }[]>(
        'SELECT inet_server_port() AS port FROM "Post" WHERE id = $1',
        1,
      );
      return { tagged: tagged[0], unsafe: unsafe[0] };
    });
    expect(replicaPorts.has(seen.result.tagged?.port ?? 0)).toBe(true);
    expect(seen.result.tagged?.standby).toBe(true);
    expect(replicaPorts.has(seen.result.unsafe?.port ?? 0)).toBe(true);
    expect(seen.postgres).toEqual(['replica']);
    expect(seen.pgpulse).toEqual(['replica']);
  });

  it('$primary() sends every query to the primary, also when it is awaited later', async () => {
    const primary = prisma.$primary();
    // Built now, run later outside any scope: the scope applies when the query runs.
    const later = primary.user.findMany({ include: { posts: true } });
    // Runs the query on a later turn, outside the call that built it (any pause would do).
    await sleep(5);
    const seen = await served(async () => {
      const users = await later;
      const count = await primary.post.count();
      const one = await primary.user.findUniqueOrThrow({ where: { id: 1 } });
      const raw = await primary.$queryRaw<{ port: number }[]>`
        SELECT inet_server_port() AS port FROM "User" LIMIT 1`;
      return { users, count, one, port: raw[0]?.port };
    });
    expect(seen.result.users.length).toBeGreaterThan(0);
    expect(seen.result.one.id).toBe(1);
    expect(seen.result.port).toBe(sandbox.primary.port);
    expect(seen.postgres).toEqual(['primary']);
    expect(seen.pgpulse).toEqual(['primary']);
    expect(prisma.$primary()).toBe(primary);
    expect(prisma.$replica().$primary()).toBe(primary);
  });

  it('$primary() findUnique is not merged with a replica findUnique made in the same tick', async () => {
    const seen = await served(() =>
      Promise.all([
        prisma.user.findUnique({ where: { id: 1 } }),
        prisma.$primary().user.findUnique({ where: { id: 2 } }),
        prisma.$primary().user.findUnique({ where: { id: 3 }, include: { posts: true } }),
      ]),
    );
    expect(seen.result.map((u) => u?.id)).toEqual([1, 2, 3]);
    expect(seen.statements.replica).toBe(1);
    expect(seen.statements.primary).toBe(3);
  });

  it("$primary() keeps the client's own extensions, each applied once", async () => {
    const calls: string[] = [];
    const extended = prisma.$extends({
      result: { user: { label: { needs: { name: true }, compute: (u) => `<${u.name}>` } } },
      query: {
        user: {
          findUnique({ args, query }) {
            calls.push('findUnique');
            return query(args);
          },
        },
      },
    });
    const seen = await served(async () => {
      const one = await extended.$primary().user.findUnique({ where: { id: 1 } });
      const batch = await extended
        .$primary()
        .$transaction([extended.$primary().user.findUniqueOrThrow({ where: { id: 2 } })]);
      return { one, batch };
    });
    expect(seen.result.one?.label).toBe('<seed 1>');
    expect(seen.result.batch[0].label).toBe('<seed 2>');
    expect(calls).toEqual(['findUnique']);
    expect(seen.postgres).toEqual(['primary']);
  });

  it('the scope that counts is the one active when a Prisma query runs, not when it is built', async () => {
    // PrismaPromises are lazy. One built inside a scope but run after the scope ended runs
    // outside it...
    let kept: Promise<number> | undefined;
    cluster.primary(() => {
      kept = prisma.user.count();
    });
    const later = await served(async () => await kept);
    expect(later.postgres).toEqual(['replica']);
    // ...and one built outside but run inside runs inside it.
    const builtOutside = prisma.user.count();
    const inside = await served(() => cluster.primary(async () => await builtOutside));
    expect(inside.postgres).toEqual(['primary']);
    // A query returned without await from a scope function is started inside the scope.
    const returned = await served(() => cluster.primary(() => prisma.user.count()));
    expect(returned.postgres).toEqual(['primary']);
    const strong = await served(() =>
      prisma.$withConsistency('strong', () => prisma.user.findMany({ take: 1 })),
    );
    expect(strong.result).toHaveLength(1);
    expect(strong.postgres).toEqual(['primary']);
    const eventual = await served(() =>
      prisma.$withConsistency('eventual', () => prisma.user.findMany({ take: 1 })),
    );
    expect(eventual.postgres).toEqual(['replica']);
    // A scoped client applies its scope whenever its query runs.
    const fromStrong = prisma.$consistency('strong').post.findMany({ take: 1 });
    // Runs the query on a later turn, outside the call that built it (any pause would do).
    await sleep(5);
    const strongClient = await served(() => fromStrong);
    expect(strongClient.postgres).toEqual(['primary']);
    expect(prisma.$consistency('strong')).toBe(prisma.$consistency('strong'));
  });

  it('cluster.context() is one request: it reads its own writes, other requests keep the replicas', async () => {
    await delayReplicas(sandbox, 3_000);
    try {
      const address = email('context');
      const user = await cluster.context(async () => {
        await prisma.user.create({ data: { email: address } });
        return prisma.user.findUnique({ where: { email: address } });
      });
      expect(user?.email).toBe(address);
      // A new request has not written the row: it reads a replica, which is 3 s behind. (The
      // query is returned without await: it still runs inside that request.)
      const again = await cluster.context(() =>
        prisma.user.findUnique({ where: { email: address } }),
      );
      expect(again).toBeNull();
      const other = await served(() => prisma.user.count());
      expect(other.postgres).toEqual(['replica']);
    } finally {
      await undelayReplicas(sandbox);
    }
  });

  it('$replica() reads from a replica; writes through it still go to the primary', async () => {
    const replica = prisma.$replica();
    const reads = await served(() => replica.user.findMany({ take: 3 }));
    expect(reads.postgres).toEqual(['replica']);
    const writes = await served(() => replica.user.create({ data: { email: email('replica') } }));
    expect(writes.postgres).toEqual(['primary']);
  });

  it('$primary() and $replica() inside an interactive transaction stay on the transaction', async () => {
    const seen = await served(() =>
      prisma.$transaction(async (tx) => {
        const a = await tx.$replica().$queryRaw<{ pid: number }[]>`
          SELECT pg_backend_pid() AS pid FROM "User" LIMIT 1`;
        const b = await tx.$primary().$queryRaw<{ pid: number }[]>`
          SELECT pg_backend_pid() AS pid FROM "User" LIMIT 1`;
        return [a[0]?.pid, b[0]?.pid];
      }),
    );
    expect(seen.result[0]).toBe(seen.result[1]);
    expect(seen.postgres).toEqual(['primary']);
  });

  it("pgpulse's errors reach the caller through Prisma with their code", async () => {
    // A cluster whose primary nothing listens on (port 1): reads still work, writes say why not.
    const down = createCluster({
      primary: 'postgres://postgres@127.0.0.1:1/postgres',
      replicas: sandbox.replicas.map((r) => r.url),
    });
    const client = connect(down);
    try {
      const users = await client.user.findMany({ take: 1 });
      expect(users).toHaveLength(1);
      await expect(client.user.create({ data: { email: email('down') } })).rejects.toMatchObject({
        name: 'PrismaClientKnownRequestError',
        code: 'PGPULSE_PRIMARY_UNAVAILABLE',
      });
    } finally {
      await client.$disconnect();
      await down.close();
    }
  });

  it('one replica killed: reads still succeed', async () => {
    const [dead, alive] = sandbox.replicas;
    await sandbox.kill(dead!.name);
    try {
      // Right after the crash, before any probe noticed: 30 concurrent requests, each one read.
      const burst = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) =>
          cluster.context(async () => await prisma.user.findFirst({ where: { id: 1 + (i % 5) } })),
        ),
      );
      expect(burst.filter((o) => o.status === 'rejected')).toEqual([]);
      const ports: number[] = [];
      // Separate requests, as an app would make them, for about 1.5 s.
      for (let i = 0; i < 30; i++) {
        const port = await cluster.context(async () => {
          const users = await prisma.user.findMany({ take: 2 });
          expect(users).toHaveLength(2);
          const rows = await prisma.$queryRaw<{ port: number }[]>`
            SELECT inet_server_port() AS port FROM "User" LIMIT 1`;
          return rows[0]!.port;
        });
        ports.push(port);
        // Spreads the requests over the probes' rounds; nothing waits on it.
        await sleep(50);
      }
      expect(ports).not.toContain(dead!.port);
      // Once the probes have marked it down (however long that takes on a loaded machine), the
      // surviving replica takes the reads.
      await waitUntil(
        () => cluster.stats().nodes.find((n) => n.port === dead!.port)?.up === false,
        { message: 'the killed replica was not marked down' },
      );
      const after: number[] = [];
      for (let i = 0; i < 10; i++) {
        const rows = await cluster.context(
          () => prisma.$queryRaw<{ port: number }[]>`
            SELECT inet_server_port() AS port FROM "User" LIMIT 1`,
        );
        after.push(rows[0]!.port);
      }
      expect(after).toEqual(Array(10).fill(alive!.port));
    } finally {
      await sandbox.start(dead!.name);
    }
  });

  // Primary failover -> writes resume: to be added here with core's failover (issue 4); it can
  // use `sandbox.kill(sandbox.primary.name)` / `sandbox.promote(...)`, `served` and `connect`.
});
