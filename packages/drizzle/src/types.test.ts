/**
 * Ordinary drizzle code against the wrapped database, with no casts: it must compile under the
 * workspace's strict settings (`npx tsc -p tsconfig.json --noEmit`) with drizzle's own result
 * types, and it runs against a sandbox so the types describe real rows.
 */
import { type Cluster, createCluster, type RoutingPool } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { count, eq, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { type PgPulseDatabase, type PgPulseScopedDatabase, withPgPulse } from './index.js';
import { DDL, posts, schema, users } from './testing/schema.js';

interface User {
  id: number;
  name: string;
  email: string | null;
}
interface UserWithPosts extends User {
  posts: Post[];
}
interface Post {
  id: number;
  userId: number;
  title: string;
}

describe('types: the wrapped database is a drizzle database', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let db: PgPulseDatabase<typeof schema>;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query('primary', DDL);
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
    });
    db = withPgPulse(cluster, { schema });
  });

  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  it('infers the schema from the config and keeps NodePgDatabase', () => {
    const inferred = withPgPulse(cluster, { schema });
    expectTypeOf(inferred).toEqualTypeOf<PgPulseDatabase<typeof schema>>();
    expectTypeOf(inferred).toExtend<NodePgDatabase<typeof schema>>();
    expectTypeOf(inferred.$primary).toExtend<NodePgDatabase<typeof schema>>();
    expectTypeOf(inferred.$replica).toEqualTypeOf<PgPulseScopedDatabase<typeof schema>>();
    expectTypeOf(inferred.$client).toEqualTypeOf<RoutingPool>();
    expectTypeOf(inferred.$primary.$client).toEqualTypeOf<pg.Pool>();
    expectTypeOf(inferred.$cluster).toEqualTypeOf<Cluster>();
    expectTypeOf<typeof db.query.users.findMany>().toEqualTypeOf<
      NodePgDatabase<typeof schema>['query']['users']['findMany']
    >();
  });

  it('select, insert, update, delete', async () => {
    const all = await db.select().from(users).orderBy(users.id);
    expectTypeOf(all).toEqualTypeOf<User[]>();
    expect(all[0]).toEqual({ id: 1, name: 'alice', email: 'alice@example.com' });

    const partial = await db
      .select({ name: users.name, posts: count(posts.id) })
      .from(users)
      .leftJoin(posts, eq(posts.userId, users.id))
      .groupBy(users.name);
    expectTypeOf(partial).toEqualTypeOf<{ name: string; posts: number }[]>();

    const joined = await db.select().from(posts).leftJoin(users, eq(posts.userId, users.id));
    expectTypeOf(joined).toEqualTypeOf<{ dz_posts: Post; dz_users: User | null }[]>();

    const [inserted] = await db.insert(users).values({ name: 'erin' }).returning();
    expectTypeOf(inserted).toEqualTypeOf<User | undefined>();
    expect(inserted?.name).toBe('erin');

    const updated = await db
      .update(users)
      .set({ email: 'erin@example.com' })
      .where(eq(users.name, 'erin'))
      .returning({ id: users.id, email: users.email });
    expectTypeOf(updated).toEqualTypeOf<{ id: number; email: string | null }[]>();

    const deleted = await db
      .delete(users)
      .where(eq(users.name, 'erin'))
      .returning({ id: users.id });
    expectTypeOf(deleted).toEqualTypeOf<{ id: number }[]>();

    const total = await db.$count(users);
    expectTypeOf(total).toEqualTypeOf<number>();

    const raw = await db.execute<{ n: number }>(sql`select count(*)::int as n from ${users}`);
    expectTypeOf(raw.rows).toEqualTypeOf<{ n: number }[]>();
  });

  it('relational queries, on the database and on $primary / $replica', async () => {
    const withPosts = await db.query.users.findMany({ with: { posts: true }, orderBy: users.id });
    expectTypeOf(withPosts).toEqualTypeOf<UserWithPosts[]>();
    expect(withPosts[0]?.posts.length).toBeGreaterThan(0);

    const first = await db.$primary.query.posts.findFirst({
      columns: { title: true },
      with: { author: { columns: { name: true } } },
    });
    expectTypeOf(first).toEqualTypeOf<{ title: string; author: { name: string } } | undefined>();

    const fromReplica = await db.$replica.query.users.findFirst({ where: eq(users.id, 1) });
    expectTypeOf(fromReplica).toEqualTypeOf<User | undefined>();
  });

  it('transactions (nested) and consistency blocks keep their result types', async () => {
    const result = await db.transaction(async (tx) => {
      const [row] = await tx
        .select({ id: users.id })
        .from(users)
        .where(eq(users.id, 1))
        .for('update');
      const inner = await tx.transaction(async (nested) => nested.$count(posts));
      return { id: row?.id, inner };
    });
    expectTypeOf(result).toEqualTypeOf<{ id: number | undefined; inner: number }>();
    expect(result.id).toBe(1);

    const strong = await db.$withConsistency('strong', () => db.select().from(users));
    expectTypeOf(strong).toEqualTypeOf<User[]>();
    const viaAsync = await db.$withConsistency('read-your-writes', async () => db.$count(users));
    expectTypeOf(viaAsync).toEqualTypeOf<number>();
    expectTypeOf(db.$withConsistency('eventual', () => 42)).toEqualTypeOf<number>();

    // The level is checked by the compiler (nothing checks it at run time, so nothing runs here).
    expectTypeOf(db.$consistency).toBeCallableWith('strong');
    // @ts-expect-error: not a consistency level
    expectTypeOf(db.$consistency).toBeCallableWith('sometimes');
    // @ts-expect-error: not a consistency level
    expectTypeOf(db.$withConsistency).toBeCallableWith('sometimes', () => 1);
    expectTypeOf(db.$cached).returns.toEqualTypeOf<PgPulseScopedDatabase<typeof schema>>();
    expectTypeOf(db.$cached).toBeCallableWith({ ttlMs: 30_000, tags: ['users'] });
    // @ts-expect-error: ttlMs is a number of milliseconds
    expectTypeOf(db.$cached).toBeCallableWith({ ttlMs: '30s' });
  });
});
