import { type Cluster, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import {
  DataSource,
  type DataSourceOptions,
  type DeleteResult,
  type EntityManager,
  type InsertResult,
  type QueryRunner,
  type Repository,
  type SelectQueryBuilder,
  type UpdateResult,
} from 'typeorm';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import {
  createPgPulseDataSource,
  type PgPulseDataSource,
  type PgPulseTypeOrmOptions,
  pgpulseDataSourceOptions,
} from './index.js';
import { BlogPost, ENTITIES, SCHEMA_SQL, UserAccount } from './test-support/entities.js';

/**
 * Ordinary TypeORM code, written as if pgpulse were not there, against the DataSource built by
 * createPgPulseDataSource: no casts. `tsc -p tsconfig.json` checks the types; vitest runs the
 * same code against a sandbox so it is not only compiled.
 */

let sandbox: SandboxCluster;
let cluster: Cluster;
let ds: PgPulseDataSource;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
  await sandbox.query('primary', SCHEMA_SQL);
  await sandbox.waitForReplay();
  cluster = createCluster({
    primary: sandbox.primary.url,
    replicas: sandbox.replicas.map((r) => r.url),
  });
  ds = await createPgPulseDataSource(cluster, { entities: ENTITIES, logging: false }).initialize();
});

afterAll(async () => {
  if (ds?.isInitialized) await ds.destroy();
  await cluster?.close();
  await sandbox?.stop();
});

describe('TypeORM types through @pgpulse/typeorm', () => {
  it('the DataSource is a TypeORM DataSource and its options are DataSourceOptions', () => {
    expectTypeOf(ds).toExtend<DataSource>();
    expectTypeOf(ds.options).toEqualTypeOf<DataSourceOptions>();
    expectTypeOf(
      pgpulseDataSourceOptions(cluster, { entities: ENTITIES }),
    ).toExtend<DataSourceOptions>();
    expectTypeOf<PgPulseTypeOrmOptions>().not.toHaveProperty('url');
    expectTypeOf<PgPulseTypeOrmOptions>().not.toHaveProperty('driver');
    expectTypeOf(ds.query).toEqualTypeOf<DataSource['query']>();
    expect(ds).toBeInstanceOf(DataSource);
  });

  it('repository find with relations and where', async () => {
    const users = ds.getRepository(UserAccount);
    expectTypeOf(users).toEqualTypeOf<Repository<UserAccount>>();
    const found = await users.find({
      where: { name: 'seed-1', posts: { title: 'post-5' } },
      relations: { posts: true },
      order: { id: 'ASC' },
    });
    expectTypeOf(found).toEqualTypeOf<UserAccount[]>();
    expectTypeOf(found[0]!.posts).toEqualTypeOf<BlogPost[]>();
    expect(found[0]?.posts.map((p) => p.title)).toEqual(['post-5']);

    const one = await users.findOne({ where: { id: 1 }, relations: { posts: true } });
    expectTypeOf(one).toEqualTypeOf<UserAccount | null>();
    const byName = await users.findOneByOrFail({ name: 'seed-2' });
    expectTypeOf(byName.balance).toBeNumber();
    const [page, total] = await users.findAndCount({ skip: 0, take: 2 });
    expectTypeOf(total).toBeNumber();
    expect(page).toHaveLength(2);
  });

  it('save, insert, update, delete', async () => {
    const users = ds.getRepository(UserAccount);
    const saved = await users.save(users.create({ name: 'typed', balance: 3 }));
    expectTypeOf(saved).toEqualTypeOf<UserAccount>();
    const many = await users.save([{ name: 'typed-a' }, { name: 'typed-b' }]);
    expectTypeOf(many).toExtend<UserAccount[]>();
    const inserted = await users.insert({ name: 'typed-c' });
    expectTypeOf(inserted).toEqualTypeOf<InsertResult>();
    const updated = await users.update({ id: saved.id }, { balance: 4 });
    expectTypeOf(updated).toEqualTypeOf<UpdateResult>();
    const deleted = await users.delete({ name: 'typed-c' });
    expectTypeOf(deleted).toEqualTypeOf<DeleteResult>();
    expect(updated.affected).toBe(1);
    expect(deleted.affected).toBe(1);
  });

  it('transaction with an EntityManager', async () => {
    const balance = await ds.transaction(async (manager) => {
      expectTypeOf(manager).toEqualTypeOf<EntityManager>();
      const user = await manager.findOneOrFail(UserAccount, {
        where: { id: 1 },
        lock: { mode: 'pessimistic_write' },
      });
      user.balance += 1;
      await manager.save(user);
      const post = manager.create(BlogPost, { title: 'in-tx', author: user });
      await manager.save(post);
      return user.balance;
    });
    expectTypeOf(balance).toBeNumber();
    const iso = await ds.transaction('SERIALIZABLE', (manager) => manager.count(BlogPost));
    expectTypeOf(iso).toBeNumber();
  });

  it('query builder getMany, getRawMany, query runners and raw query', async () => {
    const qb = ds
      .getRepository(BlogPost)
      .createQueryBuilder('post')
      .leftJoinAndSelect('post.author', 'author')
      .where('author.name = :name', { name: 'seed-1' });
    expectTypeOf(qb).toEqualTypeOf<SelectQueryBuilder<BlogPost>>();
    const posts = await qb.getMany();
    expectTypeOf(posts).toEqualTypeOf<BlogPost[]>();
    expect(posts.every((p) => p.author.name === 'seed-1')).toBe(true);

    const raw = await ds
      .createQueryBuilder(UserAccount, 'u')
      .select('u.name', 'name')
      .getRawMany<{ name: string }>();
    expectTypeOf(raw).toEqualTypeOf<{ name: string }[]>();

    const runner = ds.createQueryRunner('slave');
    expectTypeOf(runner).toEqualTypeOf<QueryRunner>();
    try {
      const users = await runner.manager.find(UserAccount);
      expect(users.length).toBeGreaterThan(0);
    } finally {
      await runner.release();
    }

    const rows = await ds.query<{ n: number }[]>('SELECT count(*)::int AS n FROM blog_post');
    expectTypeOf(rows).toEqualTypeOf<{ n: number }[]>();
    expect(rows[0]!.n).toBeGreaterThan(0);
  });
});
