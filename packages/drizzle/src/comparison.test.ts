/**
 * The scenario list of drizzle.test.ts, run against drizzle's own `withReplicas(primary,
 * [replica, ...])` over plain pg pools, asserting what it actually does. Results side by side
 * with pgpulse: docs/comparison.md.
 */
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { eq, inArray, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { withReplicas } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messages, nodeAt, observe, observeFailure } from './testing/observe.js';
import { DDL, postCounts, posts, schema, users } from './testing/schema.js';

const REPLICAS = ['replica1', 'replica2'];
// A standby refuses anything that writes or locks with this error (the verb is the top-level one).
const READ_ONLY = /cannot execute (UPDATE|SELECT|SELECT FOR UPDATE) in a read-only transaction/;
const port = sql<number>`inet_server_port()`;
const backend = sql<number>`pg_backend_pid()`;

function expectReplicasOnly(nodes: readonly string[]): void {
  expect(nodes.length).toBeGreaterThan(0);
  for (const node of nodes) expect(REPLICAS).toContain(node);
}

function connect(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // A killed server makes idle clients emit 'error'; without a listener the process would exit.
  pool.on('error', () => {});
  return pool;
}

/** drizzle's documented set-up: one drizzle database per server, combined by withReplicas. */
function replicated(primary: pg.Pool, replicas: pg.Pool[]) {
  const [first, ...rest] = replicas.map((client) => drizzle({ client, schema }));
  return withReplicas(drizzle({ client: primary, schema }), [first!, ...rest]);
}

describe("drizzle's own withReplicas on the same 1 + 2 sandbox", () => {
  let sandbox: SandboxCluster;
  let pools: pg.Pool[] = [];
  let db: ReturnType<typeof replicated>;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query('primary', DDL);
    await sandbox.waitForReplay();
    pools = [sandbox.primary, ...sandbox.replicas].map((node) => connect(node.url));
    const [primary, ...replicas] = pools;
    db = replicated(primary!, replicas);
  });

  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await sandbox?.stop();
  });

  it('select builders -> replica', async () => {
    const { value, nodes } = await observe(sandbox, () =>
      db.select({ id: users.id, port }).from(users).where(eq(users.name, 'alice')),
    );
    expectReplicasOnly(nodes);
    expect(REPLICAS).toContain(nodeAt(sandbox, value[0]!.port));
  });

  it('relational queries -> replica', async () => {
    const { value, nodes } = await observe(sandbox, () =>
      db.query.users.findMany({
        with: { posts: true },
        extras: { port: sql<number>`inet_server_port()`.as('port') },
      }),
    );
    expectReplicasOnly(nodes);
    expect(REPLICAS).toContain(nodeAt(sandbox, value[0]!.port));
  });

  it('$count and db.with(cte).select() -> replica', async () => {
    const authors = db.$with('authors').as(db.selectDistinct({ id: posts.userId }).from(posts));
    const { value, nodes } = await observe(sandbox, async () => ({
      count: await db.$count(users),
      rows: await db
        .with(authors)
        .select({ port })
        .from(users)
        .where(inArray(users.id, db.select({ id: authors.id }).from(authors))),
    }));
    expectReplicasOnly(nodes);
    expect(value.count).toBeGreaterThanOrEqual(3);
  });

  it('raw read db.execute(sql`select ...`) -> PRIMARY (execute always goes to the primary)', async () => {
    const { value, nodes } = await observe(sandbox, () =>
      db.execute<{ port: number }>(sql`select inet_server_port() as port from ${users} limit 1`),
    );
    expect(nodes).toEqual(['primary']);
    expect(nodeAt(sandbox, value.rows[0]!.port)).toBe('primary');
  });

  it('insert / update / delete with returning -> primary', async () => {
    const { value, nodes } = await observe(sandbox, async () => {
      const [a] = await db.insert(users).values({ name: 'dave' }).returning({ id: users.id, port });
      const [b] = await db
        .update(users)
        .set({ email: 'd@example.com' })
        .where(eq(users.id, a!.id))
        .returning({ port });
      const [c] = await db.delete(users).where(eq(users.id, a!.id)).returning({ port });
      return [a!.port, b!.port, c!.port];
    });
    expect(nodes).toEqual(['primary']);
    for (const p of value) expect(nodeAt(sandbox, p)).toBe('primary');
  });

  it('db.with(cte).update(...) -> sent to a REPLICA, fails "cannot execute UPDATE in a read-only transaction"', async () => {
    const target = db
      .$with('target')
      .as(db.select({ id: users.id }).from(users).where(eq(users.name, 'bob')));
    const { error, nodes } = await observeFailure(sandbox, () =>
      db
        .with(target)
        .update(users)
        .set({ email: 'bob@cte.example' })
        .where(inArray(users.id, db.select({ id: target.id }).from(target))),
    );
    expect(messages(error)).toMatch(READ_ONLY);
    expect(nodes).toEqual([]);
    const [bob] = await sandbox.query<{ email: string | null }>(
      'primary',
      "SELECT email FROM dz_users WHERE name = 'bob'",
    );
    expect(bob!.email).toBeNull();
  });

  it('writable CTE db.with($with(...).as(update ... returning)).select() -> REPLICA, fails', async () => {
    const touched = db
      .$with('touched')
      .as(
        db
          .update(users)
          .set({ email: 'carol@cte.example' })
          .where(eq(users.name, 'carol'))
          .returning({ id: users.id }),
      );
    const { error } = await observeFailure(sandbox, () =>
      db.with(touched).select({ id: touched.id }).from(touched),
    );
    expect(messages(error)).toMatch(READ_ONLY);
  });

  it('select ... for update outside a transaction -> REPLICA, fails', async () => {
    const { error } = await observeFailure(sandbox, () =>
      db.select({ id: users.id }).from(users).where(eq(users.id, 1)).for('update'),
    );
    expect(messages(error)).toMatch(READ_ONLY);
  });

  it('raw write db.execute(sql`update ...`) -> primary', async () => {
    const { value, nodes } = await observe(sandbox, () =>
      db.execute<{ port: number }>(
        sql`update ${users} set email = email where ${users.id} = ${1} returning inet_server_port() as port`,
      ),
    );
    expect(nodes).toEqual(['primary']);
    expect(nodeAt(sandbox, value.rows[0]!.port)).toBe('primary');
  });

  it('refreshMaterializedView -> primary', async () => {
    const { nodes } = await observe(sandbox, () => db.refreshMaterializedView(postCounts));
    expect(nodes).toEqual(['primary']);
  });

  it('transaction: every statement incl. FOR UPDATE on one primary connection', async () => {
    const { value, nodes } = await observe(sandbox, () =>
      db.transaction(async (tx) => {
        const a = await tx.select({ port, pid: backend }).from(users).limit(1).for('update');
        const b = await tx
          .update(users)
          .set({ email: 'tx@example.com' })
          .where(eq(users.id, 1))
          .returning({ port, pid: backend });
        const c = await tx.transaction((nested) =>
          nested.insert(posts).values({ userId: 1, title: 'tx' }).returning({ port, pid: backend }),
        );
        return [a[0]!, b[0]!, c[0]!];
      }),
    );
    expect(nodes).toEqual(['primary']);
    expect(new Set(value.map((v) => `${v.port}:${v.pid}`)).size).toBe(1);
    expect(nodeAt(sandbox, value[0]!.port)).toBe('primary');
  });

  it("read-only transaction (accessMode: 'read only') -> primary", async () => {
    const { nodes } = await observe(sandbox, () =>
      db.transaction((tx) => tx.select().from(users).limit(1), { accessMode: 'read only' }),
    );
    expect(nodes).toEqual(['primary']);
  });

  it('$primary -> primary', async () => {
    const { value, nodes } = await observe(sandbox, () =>
      db.$primary.select({ port }).from(users).limit(1),
    );
    expect(nodes).toEqual(['primary']);
    expect(nodeAt(sandbox, value[0]!.port)).toBe('primary');
  });

  describe('read right after a write (replicas apply WAL 500 ms late)', () => {
    beforeAll(async () => {
      for (const name of REPLICAS) await sandbox.setApplyDelay(name, 500);
    });
    afterAll(async () => {
      for (const name of REPLICAS) await sandbox.setApplyDelay(name, 0);
      await sandbox.waitForReplay();
    });

    it('is STALE: the read goes to a replica that has not applied the write', async () => {
      const name = `ryw-${Date.now()}`;
      const { value, nodes, ran } = await observe(sandbox, async () => {
        await db.insert(users).values({ name });
        return db.select({ id: users.id }).from(users).where(eq(users.name, name));
      });
      expect(value).toEqual([]);
      expect(ran.primary!.some((q) => /^insert/i.test(q))).toBe(true);
      expectReplicasOnly(nodes.filter((n) => n !== 'primary'));
    });
  });

  it('one replica killed -> some reads FAIL (no health checks; replicas picked at random)', async () => {
    await sandbox.kill('replica1');
    try {
      let ok = 0;
      const failures: string[] = [];
      for (let i = 0; i < 40; i++) {
        try {
          await db.select({ port }).from(users).limit(1);
          ok++;
        } catch (err) {
          failures.push(messages(err));
        }
      }
      expect(ok).toBeGreaterThan(0);
      expect(failures.length).toBeGreaterThan(0);
      expect(failures[0]).toMatch(/ECONNREFUSED|terminat|Connection/i);
    } finally {
      await sandbox.start('replica1');
    }
  });
});
