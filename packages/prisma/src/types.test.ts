/**
 * Ordinary Prisma code against the wrapped client, with no casts: typechecked by the root
 * `tsc -p tsconfig.json` (run `pnpm --filter @pgpulse/prisma generate` first).
 */
import type { Cluster } from '@pgpulse/core';
import { describe, expectTypeOf, it } from 'vitest';
import { type Post, PrismaClient, type User } from '../test/generated/client.js';
import { pgpulseAdapter, pgpulseExtension, withPgPulse } from './index.js';

function build(cluster: Cluster) {
  const base = new PrismaClient({ adapter: pgpulseAdapter(cluster) });
  return {
    base,
    viaExtends: base.$extends(pgpulseExtension(cluster)),
    viaWith: withPgPulse(cluster, base),
  };
}

type Clients = ReturnType<typeof build>;
type Db = Clients['viaWith'];

async function ordinaryPrismaCode(db: Db) {
  const users = await db.user.findMany({
    include: { posts: true },
    where: { email: { contains: '@' } },
  });
  expectTypeOf(users).toEqualTypeOf<(User & { posts: Post[] })[]>();

  const names = await db.user.findMany({ select: { id: true, name: true } });
  expectTypeOf(names).toEqualTypeOf<{ id: number; name: string | null }[]>();

  const one = await db.user.findUnique({ where: { id: 1 }, select: { email: true } });
  expectTypeOf(one).toEqualTypeOf<{ email: string } | null>();

  const created = await db.user.create({
    data: { email: 'a@example.com', posts: { create: [{ title: 't' }] } },
  });
  expectTypeOf(created).toEqualTypeOf<User>();

  const [count, posts] = await db.$transaction([db.user.count(), db.post.findMany()]);
  expectTypeOf(count).toEqualTypeOf<number>();
  expectTypeOf(posts).toEqualTypeOf<Post[]>();

  const moved = await db.$transaction(async (tx) => {
    const locked = await tx.$queryRaw<
      { id: number }[]
    >`SELECT id FROM "User" WHERE id = ${1} FOR UPDATE`;
    await tx.post.updateMany({ where: { authorId: 1 }, data: { published: true } });
    return locked;
  });
  expectTypeOf(moved).toEqualTypeOf<{ id: number }[]>();

  const raw = await db.$queryRaw<{ port: number }[]>`SELECT inet_server_port() AS port`;
  expectTypeOf(raw).toEqualTypeOf<{ port: number }[]>();
  const affected = await db.$executeRaw`UPDATE "User" SET name = ${'x'} WHERE id = ${1}`;
  expectTypeOf(affected).toEqualTypeOf<number>();

  // pgpulse's additions keep the client's type.
  expectTypeOf(db.$primary()).toEqualTypeOf<Db>();
  expectTypeOf(db.$replica()).toEqualTypeOf<Db>();
  const fresh = await db.$primary().user.findFirst({ where: { id: 1 }, include: { posts: true } });
  expectTypeOf(fresh).toEqualTypeOf<(User & { posts: Post[] }) | null>();
  const strong = await db.$withConsistency('strong', () =>
    db.post.findMany({ select: { title: true } }),
  );
  expectTypeOf(strong).toEqualTypeOf<{ title: string }[]>();
  const viaAsync = await db.$withConsistency('read-your-writes', async () => {
    const u = await db.user.create({ data: { email: 'b@example.com' } });
    return db.user.findUniqueOrThrow({ where: { id: u.id } });
  });
  expectTypeOf(viaAsync).toEqualTypeOf<User>();
  expectTypeOf(db.$consistency('read-your-writes')).toEqualTypeOf<Db>();
  expectTypeOf(db.$cached).toBeCallableWith({ ttlMs: 30_000, tags: ['users'] });
  // @ts-expect-error: ttlMs is a number of milliseconds
  expectTypeOf(db.$cached).toBeCallableWith({ ttlMs: '30s' });
  const counted = await db.$consistency('strong').user.count({ where: { name: null } });
  expectTypeOf(counted).toEqualTypeOf<number>();
  await db.$transaction(async (tx) => {
    const inTx = await tx.$primary().user.findMany({ select: { email: true } });
    expectTypeOf(inTx).toEqualTypeOf<{ email: string }[]>();
  });
  // Consistency levels are checked by the compiler (nothing checks them at run time, so an
  // invalid one is never run here).
  expectTypeOf(db.$withConsistency).toBeCallableWith('eventual', () => 1);
  // @ts-expect-error: not a consistency level
  expectTypeOf(db.$withConsistency).toBeCallableWith('sometimes', () => 1);
}

/** A client extended further by the user keeps pgpulse's methods and the user's additions. */
async function furtherExtended(db: Db) {
  const more = db.$extends({
    result: { user: { label: { needs: { name: true }, compute: (u) => `<${u.name}>` } } },
  });
  const user = await more.$primary().user.findUniqueOrThrow({ where: { id: 1 } });
  expectTypeOf(user.label).toEqualTypeOf<string>();
  expectTypeOf(more.$replica()).toEqualTypeOf<typeof more>();
  expectTypeOf(more.$cached()).toEqualTypeOf<typeof more>();
}

describe('types of the wrapped Prisma client', () => {
  it('withPgPulse(cluster, client) has the type of client.$extends(pgpulseExtension(cluster))', () => {
    expectTypeOf<Clients['viaWith']>().toEqualTypeOf<Clients['viaExtends']>();
    expectTypeOf(ordinaryPrismaCode).toBeFunction();
    expectTypeOf(furtherExtended).toBeFunction();
  });
});
