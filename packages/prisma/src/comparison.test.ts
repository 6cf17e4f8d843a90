/**
 * The scenario list of issue 5 run against Prisma's own `@prisma/extension-read-replicas`
 * (0.5, one PrismaClient + PrismaPg per node), asserting what it actually does. The side-by-side
 * table with pgpulse is docs/comparison.md. Where a statement ran is observed from
 * PostgreSQL (pg_stat_statements, `inet_server_port()`).
 */
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { PrismaPg } from '@prisma/adapter-pg';
import { readReplicas } from '@prisma/extension-read-replicas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delayReplicas, email, observe, SCHEMA_SQL, undelayReplicas } from '../test/fixtures.js';
import { PrismaClient } from '../test/generated/client.js';

function client(url: string) {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 4 }) });
}

describe('@prisma/extension-read-replicas on the same 1 primary + 2 replicas', () => {
  let sandbox: SandboxCluster;
  let primary: PrismaClient;
  let replicas: PrismaClient[];
  let prisma: ReturnType<typeof connect>;
  let replicaPorts: Set<number>;

  function connect() {
    return primary.$extends(readReplicas({ replicas }));
  }

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query('primary', SCHEMA_SQL);
    await sandbox.waitForReplay();
    replicaPorts = new Set(sandbox.replicas.map((r) => r.port));
    primary = client(sandbox.primary.url);
    replicas = sandbox.replicas.map((r) => client(r.url));
    prisma = connect();
  });

  afterAll(async () => {
    await prisma?.$disconnect();
    await sandbox?.stop();
  });

  const served = <T>(fn: () => Promise<T>) => observe(sandbox, undefined, fn);

  it('model reads go to a replica', async () => {
    const seen = await served(async () => {
      const users = await prisma.user.findMany({ include: { posts: true } });
      const count = await prisma.post.count();
      const one = await prisma.user.findUnique({ where: { id: 1 } });
      return { users, count, one };
    });
    expect(seen.result.one?.id).toBe(1);
    expect(seen.postgres).toEqual(['replica']);
  });

  it('concurrent findUnique calls go to replicas', async () => {
    const seen = await served(() =>
      Promise.all([1, 2, 3].map((id) => prisma.user.findUnique({ where: { id } }))),
    );
    expect(seen.result.map((u) => u?.id)).toEqual([1, 2, 3]);
    expect(seen.postgres).toEqual(['replica']);
  });

  it('model writes go to the primary', async () => {
    const seen = await served(async () => {
      const user = await prisma.user.create({ data: { email: email('cmp-write') } });
      await prisma.user.update({ where: { id: user.id }, data: { name: 'updated' } });
      await prisma.post.deleteMany({ where: { title: 'nothing' } });
    });
    expect(seen.postgres).toEqual(['primary']);
  });

  it('a read right after a write in the same request is stale (no read-your-writes)', async () => {
    await delayReplicas(sandbox, 3_000);
    try {
      const user = await prisma.user.create({ data: { email: email('cmp-ryw') } });
      const next = await prisma.user.findUnique({ where: { id: user.id } });
      expect(next).toBeNull();
      // The workaround is to name the primary for every read that must see a write.
      const fromPrimary = await prisma.$primary().user.findUnique({ where: { id: user.id } });
      expect(fromPrimary?.id).toBe(user.id);
    } finally {
      await undelayReplicas(sandbox);
    }
  });

  it('every statement of an interactive transaction runs on the primary, FOR UPDATE included', async () => {
    const user = await prisma.user.create({ data: { email: email('cmp-tx') } });
    const seen = await served(() =>
      prisma.$transaction(async (tx) => {
        const locked = await tx.$queryRaw<{ port: number; pid: number }[]>`
          SELECT inet_server_port() AS port, pg_backend_pid() AS pid
          FROM "User" WHERE id = ${user.id} FOR UPDATE`;
        const users = await tx.user.findMany({ where: { id: user.id } });
        const plain = await tx.$queryRaw<{ port: number; pid: number }[]>`
          SELECT inet_server_port() AS port, pg_backend_pid() AS pid`;
        return { locked: locked[0], plain: plain[0], users };
      }),
    );
    expect(seen.result.locked?.port).toBe(sandbox.primary.port);
    expect(seen.result.plain).toEqual(seen.result.locked);
    expect(seen.postgres).toEqual(['primary']);
  });

  it('a batch $transaction runs on the primary', async () => {
    const seen = await served(() =>
      prisma.$transaction([
        prisma.user.findMany({ take: 2 }),
        prisma.$queryRaw<{ port: number }[]>`SELECT inet_server_port() AS port FROM "User" LIMIT 1`,
      ]),
    );
    expect(seen.result[1][0]?.port).toBe(sandbox.primary.port);
    expect(seen.postgres).toEqual(['primary']);
  });

  it('a writable CTE through $queryRaw and raw writes go to the primary (all raw SQL does)', async () => {
    const user = await prisma.user.create({
      data: { email: email('cmp-raw'), posts: { create: [{ title: 'draft' }] } },
    });
    const seen = await served(async () => {
      const cte = await prisma.$queryRaw<{ port: number; n: number }[]>`
        WITH moved AS (UPDATE "Post" SET published = true WHERE "authorId" = ${user.id} RETURNING id)
        SELECT inet_server_port() AS port, count(*)::int AS n FROM moved`;
      const updated =
        await prisma.$executeRaw`UPDATE "User" SET name = ${'raw'} WHERE id = ${user.id}`;
      return { cte: cte[0], updated };
    });
    expect(seen.result).toEqual({ cte: { port: sandbox.primary.port, n: 1 }, updated: 1 });
    expect(seen.postgres).toEqual(['primary']);
  });

  it('raw reads go to the primary, not to a replica', async () => {
    const seen = await served(async () => {
      const rows = await prisma.$queryRaw<{ port: number; standby: boolean }[]>`
        SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby FROM "User" LIMIT 1`;
      return rows[0];
    });
    expect(seen.result).toEqual({ port: sandbox.primary.port, standby: false });
    expect(replicaPorts.has(seen.result?.port ?? 0)).toBe(false);
    expect(seen.postgres).toEqual(['primary']);
    // Reading raw SQL from a replica needs $replica(), chosen by the caller.
    const viaReplica = await prisma.$replica().$queryRaw<{ port: number }[]>`
      SELECT inet_server_port() AS port`;
    expect(replicaPorts.has(viaReplica[0]?.port ?? 0)).toBe(true);
  });

  it('$primary() sends reads to the primary', async () => {
    const seen = await served(() => prisma.$primary().user.findMany({ take: 2 }));
    expect(seen.postgres).toEqual(['primary']);
  });

  it('$primary() and $replica() inside an interactive transaction escape the transaction', async () => {
    type At = { port: number; pid: number; xid: string | null }[];
    const seen = await prisma.$transaction(async (tx) => {
      await tx.user.update({ where: { id: 1 }, data: { name: 'in tx' } });
      const inTx = await tx.$queryRaw<At>`
        SELECT inet_server_port() AS port, pg_backend_pid() AS pid,
               pg_current_xact_id_if_assigned()::text AS xid`;
      const viaPrimary = await tx.$primary().$queryRaw<At>`
        SELECT inet_server_port() AS port, pg_backend_pid() AS pid,
               pg_current_xact_id_if_assigned()::text AS xid`;
      const viaReplica = await tx.$replica().$queryRaw<At>`
        SELECT inet_server_port() AS port, pg_backend_pid() AS pid`;
      return { tx: inTx[0], primary: viaPrimary[0], replica: viaReplica[0] };
    });
    expect(seen.tx?.port).toBe(sandbox.primary.port);
    expect(seen.tx?.xid).not.toBeNull();
    // $primary() returns the base client: another primary connection, outside the transaction.
    expect(seen.primary?.port).toBe(sandbox.primary.port);
    expect(seen.primary?.pid).not.toBe(seen.tx?.pid);
    expect(seen.primary?.xid).toBeNull();
    // $replica() (its own guard checks for $transaction, which Prisma 7 tx clients have) reads
    // from a replica, outside the transaction.
    expect(replicaPorts.has(seen.replica?.port ?? 0)).toBe(true);
  });

  it('one replica killed: reads that pick it fail (random choice, no health checks)', async () => {
    const [dead] = sandbox.replicas;
    await sandbox.kill(dead!.name);
    try {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) => prisma.user.findFirst({ where: { id: 1 + (i % 5) } })),
      );
      const failed = outcomes.filter((o) => o.status === 'rejected');
      const succeeded = outcomes.filter((o) => o.status === 'fulfilled');
      const first = failed[0];
      const why =
        first?.status === 'rejected' && first.reason instanceof Error
          ? first.reason.message.trim().split('\n').pop()
          : '';
      console.log(
        `extension-read-replicas, one replica killed: ${failed.length} of 30 reads failed (${why})`,
      );
      // Each read picks one of two replicas at random: P(no read picks the dead one) = 2^-30.
      expect(failed.length).toBeGreaterThan(0);
      expect(succeeded.length).toBeGreaterThan(0);
    } finally {
      await sandbox.start(dead!.name);
    }
  });
});
