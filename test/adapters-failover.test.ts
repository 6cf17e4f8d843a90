// Issue 5's last scenario for every ORM adapter: the primary fails over and writes resume,
// through the ORM's own API, with the node that took them checked in PostgreSQL.
import { withPgPulse } from '@pgpulse/drizzle';
import { pgpulseAdapter, withPgPulse as withPgPulsePrisma } from '@pgpulse/prisma';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep } from '@pgpulse/sandbox/testing';
import { createPgPulseDataSource } from '@pgpulse/typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';
import { DDL as DRIZZLE_DDL, schema, users } from '../packages/drizzle/src/testing/schema.js';
import { SCHEMA_SQL as PRISMA_DDL } from '../packages/prisma/test/fixtures.js';
import { PrismaClient } from '../packages/prisma/test/generated/client.js';
import {
  ENTITIES,
  SCHEMA_SQL as TYPEORM_DDL,
  UserAccount,
} from '../packages/typeorm/src/test-support/entities.js';

/** Retries `write` until it succeeds (writes fail fast and retriably during the window). */
async function untilWritten(write: () => Promise<unknown>, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    try {
      await write();
      return performance.now() - t0;
    } catch (err) {
      if (performance.now() - t0 > timeoutMs) throw err;
      await sleep(25);
    }
  }
}

describe('ORM adapters across a primary failover', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query('primary', DRIZZLE_DDL);
    await sandbox.query(
      'primary',
      TYPEORM_DDL.replace('CREATE EXTENSION IF NOT EXISTS pg_stat_statements;', ''),
    );
    await sandbox.query(
      'primary',
      PRISMA_DDL.replace('CREATE EXTENSION IF NOT EXISTS pg_stat_statements;', ''),
    );
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 100, timeoutMs: 300, maxConsecutiveFailures: 2 },
      failover: { promotion: 'external' },
    });
    await cluster.ready();
  });
  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  it('drizzle, Prisma and TypeORM keep reading during the window and write again once a replica is promoted', async () => {
    const db = withPgPulse(cluster, { schema });
    const dataSource = createPgPulseDataSource(cluster, { entities: ENTITIES });
    const prisma = withPgPulsePrisma(
      cluster,
      new PrismaClient({ adapter: pgpulseAdapter(cluster) }),
    );
    await dataSource.initialize();
    try {
      await db.insert(users).values({ name: 'before' });
      await dataSource.getRepository(UserAccount).save({ name: 'before', balance: 1 });
      await prisma.user.create({ data: { email: 'before@example.com', name: 'before' } });

      await sandbox.kill('primary');
      // Reads keep working from the replicas while there is no primary.
      await cluster.context(async () => {
        expect((await db.select().from(users)).length).toBeGreaterThanOrEqual(3);
        expect(await dataSource.getRepository(UserAccount).count()).toBeGreaterThanOrEqual(1);
        expect(await prisma.user.count()).toBeGreaterThanOrEqual(5);
      });
      await sandbox.promote('replica2');
      await sandbox.follow('replica1', 'replica2');

      const drizzleMs = await untilWritten(
        () => db.insert(users).values({ name: 'after-drizzle' }),
        10_000,
      );
      const typeormMs = await untilWritten(
        () => dataSource.getRepository(UserAccount).save({ name: 'after-typeorm', balance: 2 }),
        10_000,
      );
      const prismaMs = await untilWritten(
        () => prisma.user.create({ data: { email: 'after@example.com', name: 'after-prisma' } }),
        10_000,
      );
      console.log(
        `adapters after promotion: drizzle wrote in ${drizzleMs.toFixed(0)} ms, TypeORM in ${typeormMs.toFixed(0)} ms, Prisma in ${prismaMs.toFixed(0)} ms`,
      );
      const prismaRows = await sandbox.query<{ name: string }>(
        'replica2',
        `SELECT name FROM "User" WHERE name LIKE 'after%'`,
      );
      expect(prismaRows).toEqual([{ name: 'after-prisma' }]);

      const onNew = await sandbox.query<{ name: string }>(
        'replica2',
        "SELECT name FROM dz_users WHERE name LIKE 'after%'",
      );
      expect(onNew).toEqual([{ name: 'after-drizzle' }]);
      const typeormRows = await sandbox.query<{ name: string }>(
        'replica2',
        "SELECT name FROM user_account WHERE name LIKE 'after%'",
      );
      expect(typeormRows).toEqual([{ name: 'after-typeorm' }]);
      // Read-your-writes holds on the new primary's timeline too.
      await cluster.context(async () => {
        await db.insert(users).values({ name: 'ryw' });
        const seen = await db.query.users.findFirst({ where: (u, { eq }) => eq(u.name, 'ryw') });
        expect(seen?.name).toBe('ryw');
      });
    } finally {
      await dataSource.destroy();
      await prisma.$disconnect();
    }
  });
});
