import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENTITIES, SCHEMA_SQL, UserAccount } from './test-support/entities.js';
import { observe } from './test-support/observe.js';

/**
 * The scenario list of issue 5 run against TypeORM's own `replication: { master, slaves }`, to
 * record what it actually does (docs/comparison.md puts it next to pgpulse). Which node
 * ran a statement is read from pg_stat_statements on every node.
 */

const REPLICAS = ['replica1', 'replica2'];

let sandbox: SandboxCluster;
let ds: DataSource;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 2 });
  await sandbox.query('primary', SCHEMA_SQL);
  await sandbox.waitForReplay();
  ds = await new DataSource({
    type: 'postgres',
    entities: ENTITIES,
    synchronize: false,
    poolSize: 4,
    replication: {
      master: { url: sandbox.primary.url },
      slaves: sandbox.replicas.map((r) => ({ url: r.url })),
    },
    poolErrorHandler: () => {},
  }).initialize();
});

afterAll(async () => {
  if (ds?.isInitialized) await ds.destroy();
  await sandbox?.stop();
});

function served<T>(table: string, fn: () => Promise<T>) {
  return observe(sandbox, undefined, table, fn);
}

function expectOneReplica(postgres: string[]): void {
  expect(postgres).toHaveLength(1);
  expect(REPLICAS).toContain(postgres[0]);
}

async function port(rows: Promise<Array<{ port: number }>>): Promise<number> {
  const [row] = await rows;
  return row!.port;
}

describe("TypeORM's own replication", () => {
  it('find with relations: a replica', async () => {
    const seen = await served('user_account', () =>
      ds.getRepository(UserAccount).find({ where: { id: 1 }, relations: { posts: true } }),
    );
    expect(seen.result).toHaveLength(1);
    expectOneReplica(seen.postgres);
  });

  it('save: the primary', async () => {
    const repo = ds.getRepository(UserAccount);
    const seen = await served('user_account', () => repo.save(repo.create({ name: 'cmp' })));
    expect(seen.postgres).toEqual(['primary']);
  });

  it('read right after a write: served by a replica that has not applied it yet (stale)', async () => {
    for (const name of REPLICAS) await sandbox.setApplyDelay(name, 2_000);
    try {
      const repo = ds.getRepository(UserAccount);
      const saved = await repo.save(repo.create({ name: 'cmp-stale' }));
      const seen = await served('user_account', () => repo.findOneBy({ id: saved.id }));
      expectOneReplica(seen.postgres);
      expect(seen.result).toBeNull();
    } finally {
      for (const name of REPLICAS) await sandbox.setApplyDelay(name, 0);
      await sandbox.waitForReplay();
    }
  });

  it('dataSource.transaction with FOR UPDATE: every statement on the primary', async () => {
    const seen = await served('user_account', () =>
      ds.transaction(async (em) => {
        const user = await em.findOneOrFail(UserAccount, {
          where: { id: 2 },
          lock: { mode: 'pessimistic_write' },
        });
        await em.update(UserAccount, { id: 2 }, { balance: user.balance + 1 });
        return em.query<Array<{ port: number }>>('SELECT inet_server_port() AS port');
      }),
    );
    expect(seen.postgres).toEqual(['primary']);
    expect(seen.result[0]!.port).toBe(sandbox.primary.port);
  });

  it("a transaction on createQueryRunner('slave') runs on a replica: FOR UPDATE fails", async () => {
    const runner = ds.createQueryRunner('slave');
    try {
      await runner.startTransaction();
      expect(await port(runner.query('SELECT inet_server_port() AS port'))).not.toBe(
        sandbox.primary.port,
      );
      await expect(
        runner.manager.findOne(UserAccount, {
          where: { id: 2 },
          lock: { mode: 'pessimistic_write' },
        }),
      ).rejects.toMatchObject({ driverError: { code: '25006' } });
      await runner.rollbackTransaction();
    } finally {
      await runner.release();
    }
  });

  it('writable CTE from the select query builder: sent to a replica, fails', async () => {
    // pg_stat_statements does not record failed statements; the standby's own error says where
    // it ran (the primary is writable, so 25006 can only come from a replica).
    const err = await ds
      .createQueryBuilder()
      .addCommonTableExpression(
        'UPDATE user_account SET balance = 600 WHERE id = 5 RETURNING id',
        'bumped',
      )
      .select('count(*)::int', 'n')
      .from('bumped', 'bumped')
      .getRawOne()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ code: '25006' });
    expect(String(err)).toMatch(/read-only transaction/);
    const rows = await sandbox.query('primary', 'SELECT balance FROM user_account WHERE id = 5');
    expect(rows).not.toEqual([{ balance: 600 }]);
  });

  it('writable CTE via dataSource.query: the primary', async () => {
    const seen = await served('user_account', () =>
      ds.query<Array<{ port: number }>>(
        `WITH bumped AS (UPDATE user_account SET balance = 700 WHERE id = 5 RETURNING id)
         SELECT inet_server_port() AS port FROM bumped`,
      ),
    );
    expect(seen.result[0]!.port).toBe(sandbox.primary.port);
    expect(seen.postgres).toEqual(['primary']);
  });

  it('raw write via dataSource.query: the primary', async () => {
    const seen = await served('user_account', () =>
      ds.query('UPDATE user_account SET balance = balance + 1 WHERE id = 1'),
    );
    expect(seen.postgres).toEqual(['primary']);
  });

  it('raw read via dataSource.query: the primary too (a master runner), not a replica', async () => {
    const seen = await served('user_account', () =>
      ds.query<Array<{ port: number }>>(
        'SELECT inet_server_port() AS port, count(*) FROM user_account',
      ),
    );
    expect(seen.result[0]!.port).toBe(sandbox.primary.port);
    expect(seen.postgres).toEqual(['primary']);
  });

  it("createQueryRunner('master'): the primary", async () => {
    const runner = ds.createQueryRunner('master');
    try {
      const seen = await served('user_account', () => runner.manager.find(UserAccount));
      expect(seen.postgres).toEqual(['primary']);
    } finally {
      await runner.release();
    }
  });

  it("createQueryRunner('slave'): a replica for reads; a write on it fails", async () => {
    const runner = ds.createQueryRunner('slave');
    try {
      const seen = await served('user_account', () => runner.manager.find(UserAccount));
      expectOneReplica(seen.postgres);
      await expect(
        runner.manager.update(UserAccount, { id: 1 }, { balance: 1 }),
      ).rejects.toMatchObject({ driverError: { code: '25006' } });
    } finally {
      await runner.release();
    }
  });

  it('one replica killed: a share of reads fails (no health check, no retry)', async () => {
    await sandbox.kill('replica1');
    try {
      let failed = 0;
      let succeeded = 0;
      for (let i = 0; i < 20; i++) {
        try {
          await ds.getRepository(UserAccount).findOneBy({ id: 1 });
          succeeded++;
        } catch {
          failed++;
        }
      }
      expect(failed).toBeGreaterThan(0);
      expect(succeeded).toBeGreaterThan(0);
    } finally {
      await sandbox.start('replica1');
    }
  });
});
