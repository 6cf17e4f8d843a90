/**
 * Prisma merges `findUnique` calls made in the same tick, across requests, into one statement
 * that runs in the first caller's context. A request that just wrote must still read its write.
 */
import { type Cluster, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_SQL } from '../test/fixtures.js';
import { PrismaClient } from '../test/generated/client.js';
import { pgpulseAdapter, withPgPulse } from './index.js';

describe('read-your-writes across requests whose findUnique calls Prisma merges', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let prisma: ReturnType<typeof withPgPulse<PrismaClient>>;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query('primary', SCHEMA_SQL);
    await sandbox.waitForReplay();
    await sandbox.setApplyDelay('replica1', 3000);
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 100 },
    });
    prisma = withPgPulse(cluster, new PrismaClient({ adapter: pgpulseAdapter(cluster) }));
    await cluster.ready();
  });
  afterAll(async () => {
    await prisma?.$disconnect();
    await cluster?.close();
    await sandbox?.stop();
  });

  it('a request reading its own new row in the same tick as another request sees it, 20 times of 20', async () => {
    let missed = 0;
    for (let i = 0; i < 20; i++) {
      const { id, token } = await cluster.context(async () => {
        const user = await prisma.user.create({ data: { email: `batch${i}@example.com` } });
        return { id: user.id, token: await cluster.consistencyToken() };
      });
      const [, mine] = await Promise.all([
        cluster.context(() => prisma.user.findUnique({ where: { id: 1 } })),
        cluster.withConsistencyToken(token, () => prisma.user.findUnique({ where: { id } })),
      ]);
      if (mine === null) missed++;
    }
    expect(missed).toBe(0);
  });

  it('requests with nothing unreplicated still read from the replica', async () => {
    const ports = await cluster.context(
      () => prisma.$queryRaw<{ port: number }[]>`SELECT inet_server_port() AS port`,
    );
    expect(ports[0]!.port).toBe(sandbox.replicas[0]!.port);
  });
});
