// One table, one run: raw pg (unnamed and hand-named), cluster.pool (automatic prepared
// statements), and each ORM on raw pg / its own replica feature against the same ORM on its
// pgpulse adapter: point reads on one node, reads over two replicas, and a mixed read/write
// workload (1 write in 5). Every row is a ratio of median throughputs from alternating runs.
// Run: pnpm bench:compare   (PAIRS=6 SECONDS=1 by default; ONLY=pool,drizzle,typeorm,prisma
// runs those sections alone; the markdown table goes to stdout). It measures the built bundle
// and adapters (bench/built.sh); PGPULSE_BENCH_SOURCE=1 measures the TypeScript sources.
import { type Cluster, createCluster } from '@pgpulse/core';
import { withPgPulse } from '@pgpulse/drizzle';
import { pgpulseAdapter } from '@pgpulse/prisma';
import { startCluster } from '@pgpulse/sandbox';
import { createPgPulseDataSource } from '@pgpulse/typeorm';
import { PrismaPg } from '@prisma/adapter-pg';
import { readReplicas } from '@prisma/extension-read-replicas';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, pgTable, text, withReplicas } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { DataSource, EntitySchema } from 'typeorm';
import { PrismaClient } from '../packages/prisma/test/generated/client.js';
import { measuredForm } from './lib/measured-form.js';
import { type PairResult, runPair, type Step, table } from './lib/pairs.js';

const PAIRS = Number(process.env.PAIRS ?? 6);
const SECONDS = Number(process.env.SECONDS ?? 1);
const WORKERS = 8;
const ROWS = 10_000;
const options = { pairs: PAIRS, seconds: SECONDS, workers: WORKERS };
/** ONLY=pool,drizzle,typeorm,prisma runs those sections alone (all by default). */
const ONLY = process.env.ONLY?.split(',');
const pairIn = (section: string, ...args: Parameters<typeof runPair>) =>
  ONLY === undefined || ONLY.includes(section) ? runPair(...args) : Promise.resolve(undefined);

const POINT = 'SELECT id, email, name FROM "User" WHERE id = $1';
const id = (i: number) => ((Math.imul(i, 2_654_435_761) >>> 0) % ROWS) + 1;
/** 1 write in 5. */
const isWrite = (i: number) => i % 5 === 4;

const users = pgTable('User', {
  id: integer('id').primaryKey(),
  email: text('email').notNull(),
  name: text('name'),
});

interface UserRow {
  id: number;
  email: string;
  name: string | null;
}
const UserEntity = new EntitySchema<UserRow>({
  name: 'User',
  tableName: 'User',
  columns: {
    id: { type: Number, primary: true },
    email: { type: String },
    name: { type: String, nullable: true },
  },
});

const sandbox = await startCluster({ replicas: 2 });
const closers: (() => Promise<unknown>)[] = [];
const results: (PairResult | undefined)[] = [];
try {
  await sandbox.query(
    'primary',
    `CREATE TABLE "User" (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text);
     CREATE TABLE "Post" (id serial PRIMARY KEY, title text NOT NULL,
       published boolean NOT NULL DEFAULT false, "authorId" integer NOT NULL REFERENCES "User" (id));
     INSERT INTO "User" (email, name) SELECT 'u' || i || '@example.com', 'user ' || i
       FROM generate_series(1, ${ROWS}) i;
     ANALYZE "User";`,
  );
  await sandbox.waitForReplay();
  const [r1, r2] = sandbox.replicas.map((r) => r.url) as [string, string];
  const primaryUrl = sandbox.primary.url;

  const rawPool = (url: string) => {
    const pool = new pg.Pool({ connectionString: url, max: WORKERS });
    closers.push(() => pool.end());
    return pool;
  };
  const newCluster = (replicas: string[], prepare = true): Cluster => {
    const cluster = createCluster({
      primary: primaryUrl,
      replicas,
      pool: { maxSize: WORKERS },
      telemetry: { enabled: false },
      preparedStatements: { enabled: prepare },
      // A loaded machine (CI) must not fail the probes mid-run.
      health: { timeoutMs: 10_000, maxConsecutiveFailures: 10 },
    });
    closers.push(() => cluster.close());
    return cluster;
  };
  const one = newCluster([]);
  const two = newCluster([r1, r2]);
  const unprepared = newCluster([], false);
  await Promise.all([one.ready(), two.ready(), unprepared.ready()]);

  // --- raw pg vs cluster.pool ---------------------------------------------------------------
  const raw = rawPool(primaryUrl);
  const rawUnnamed: Step = (i) => raw.query(POINT, [id(i)]);
  const rawNamed: Step = (i) => raw.query({ name: 'point', text: POINT, values: [id(i)] });
  const clusterPoint: Step = (i) => one.pool.query(POINT, [id(i)]);
  results.push(
    await pairIn(
      'pool',
      'point reads, 1 node',
      ['cluster.pool, preparation off', (i) => unprepared.pool.query(POINT, [id(i)])],
      ['cluster.pool', clusterPoint],
      options,
    ),
  );
  results.push(
    await pairIn(
      'pool',
      'point reads, 1 node',
      ['pg.Pool unnamed', rawUnnamed],
      ['cluster.pool', clusterPoint],
      { ...options, goal: 1.3 },
    ),
  );
  results.push(
    await pairIn(
      'pool',
      'point reads, 1 node',
      ['pg.Pool hand-named', rawNamed],
      ['cluster.pool', clusterPoint],
      { ...options, goal: 0.97 },
    ),
  );

  // --- drizzle -------------------------------------------------------------------------------
  const drizzleRaw = drizzle({ client: raw });
  const drizzleOwnReplicas = withReplicas(drizzleRaw, [
    drizzle({ client: rawPool(r1) }),
    drizzle({ client: rawPool(r2) }),
  ]);
  const drizzleOne = withPgPulse(one);
  const drizzleTwo = withPgPulse(two);
  type DrizzleDb = typeof drizzleRaw | typeof drizzleOne;
  const drizzleRead =
    (db: DrizzleDb): Step =>
    (i) =>
      db
        .select()
        .from(users)
        .where(eq(users.id, id(i)));
  const drizzleMixed =
    (db: DrizzleDb | typeof drizzleOwnReplicas): Step =>
    (i) =>
      isWrite(i)
        ? db
            .update(users)
            .set({ name: `n${i}` })
            .where(eq(users.id, id(i)))
        : db
            .select()
            .from(users)
            .where(eq(users.id, id(i)));
  results.push(
    await pairIn(
      'drizzle',
      'point reads, 1 node',
      ['drizzle on pg', drizzleRead(drizzleRaw)],
      ['drizzle on pgpulse', drizzleRead(drizzleOne)],
      { ...options, goal: 1.15 },
    ),
  );
  results.push(
    await pairIn(
      'drizzle',
      'reads, 2 replicas',
      [
        'drizzle withReplicas',
        (i) =>
          drizzleOwnReplicas
            .select()
            .from(users)
            .where(eq(users.id, id(i))),
      ],
      ['drizzle on pgpulse', drizzleRead(drizzleTwo)],
      options,
    ),
  );
  results.push(
    await pairIn(
      'drizzle',
      'mixed 4:1, 2 replicas',
      ['drizzle withReplicas', drizzleMixed(drizzleOwnReplicas)],
      ['drizzle on pgpulse', drizzleMixed(drizzleTwo)],
      options,
    ),
  );

  // --- TypeORM -------------------------------------------------------------------------------
  const typeormSource = async (source: DataSource) => {
    await source.initialize();
    closers.push(() => source.destroy());
    return source.getRepository(UserEntity);
  };
  const typeormRaw = await typeormSource(
    new DataSource({
      type: 'postgres',
      url: primaryUrl,
      entities: [UserEntity],
      poolSize: WORKERS,
    }),
  );
  const typeormOwnReplicas = await typeormSource(
    new DataSource({
      type: 'postgres',
      entities: [UserEntity],
      poolSize: WORKERS,
      replication: { master: { url: primaryUrl }, slaves: [{ url: r1 }, { url: r2 }] },
    }),
  );
  const typeormOne = await typeormSource(createPgPulseDataSource(one, { entities: [UserEntity] }));
  const typeormTwo = await typeormSource(createPgPulseDataSource(two, { entities: [UserEntity] }));
  type Repo = typeof typeormRaw;
  const typeormRead =
    (repo: Repo): Step =>
    (i) =>
      repo.findOneBy({ id: id(i) });
  const typeormMixed =
    (repo: Repo): Step =>
    (i) =>
      isWrite(i) ? repo.update({ id: id(i) }, { name: `n${i}` }) : repo.findOneBy({ id: id(i) });
  results.push(
    await pairIn(
      'typeorm',
      'point reads, 1 node',
      ['TypeORM on pg', typeormRead(typeormRaw)],
      ['TypeORM on pgpulse', typeormRead(typeormOne)],
      { ...options, goal: 1.15 },
    ),
  );
  results.push(
    await pairIn(
      'typeorm',
      'reads, 2 replicas',
      ['TypeORM replication', typeormRead(typeormOwnReplicas)],
      ['TypeORM on pgpulse', typeormRead(typeormTwo)],
      options,
    ),
  );
  results.push(
    await pairIn(
      'typeorm',
      'mixed 4:1, 2 replicas',
      ['TypeORM replication', typeormMixed(typeormOwnReplicas)],
      ['TypeORM on pgpulse', typeormMixed(typeormTwo)],
      options,
    ),
  );

  // --- Prisma 7 ------------------------------------------------------------------------------
  const prismaClient = (adapter: PrismaPg) => {
    const client = new PrismaClient({ adapter });
    closers.push(() => client.$disconnect());
    return client;
  };
  const prismaOn = (url: string) =>
    prismaClient(new PrismaPg({ connectionString: url, max: WORKERS }));
  const prismaRaw = prismaOn(primaryUrl);
  const prismaOwnReplicas = prismaOn(primaryUrl).$extends(
    readReplicas({ replicas: [prismaOn(r1), prismaOn(r2)] }),
  );
  const prismaOne = prismaClient(pgpulseAdapter(one));
  const prismaTwo = prismaClient(pgpulseAdapter(two));
  type Users = Pick<typeof prismaRaw, 'user'>;
  const prismaRead =
    (client: Users): Step =>
    (i) =>
      client.user.findUnique({ where: { id: id(i) } });
  const prismaMixed =
    (client: Users): Step =>
    (i) =>
      isWrite(i)
        ? client.user.update({ where: { id: id(i) }, data: { name: `n${i}` } })
        : client.user.findUnique({ where: { id: id(i) } });
  results.push(
    await pairIn(
      'prisma',
      'point reads, 1 node',
      ['Prisma on adapter-pg', prismaRead(prismaRaw)],
      ['Prisma on pgpulse', prismaRead(prismaOne)],
      { ...options, goal: 1.15 },
    ),
  );
  results.push(
    await pairIn(
      'prisma',
      'reads, 2 replicas',
      ['Prisma read-replicas', prismaRead(prismaOwnReplicas as unknown as Users)],
      ['Prisma on pgpulse', prismaRead(prismaTwo)],
      options,
    ),
  );
  results.push(
    await pairIn(
      'prisma',
      'mixed 4:1, 2 replicas',
      ['Prisma read-replicas', prismaMixed(prismaOwnReplicas as unknown as Users)],
      ['Prisma on pgpulse', prismaMixed(prismaTwo)],
      options,
    ),
  );

  const prepared = one.stats().preparedStatements;
  console.log(table(results.filter((r): r is PairResult => r !== undefined)));
  console.log(
    `\n${PAIRS} pairs x ${SECONDS}s per arm, ${WORKERS} workers, pools of ${WORKERS} per node, Node ${process.version}, PostgreSQL ${sandbox.version}. ` +
      `One-node cluster: ${prepared.prepared} prepared, ${prepared.executedByName} executed by name, ${prepared.reprepared} re-prepared.`,
  );
  console.log(measuredForm());
} finally {
  for (const close of closers.reverse()) await close().catch(() => {});
  await sandbox.stop();
}
