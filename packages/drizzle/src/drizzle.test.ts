/**
 * The scenario list of issue 5 for drizzle-orm, through `withPgPulse` on a primary and two
 * streaming replicas. Which server ran a statement is read from PostgreSQL: pg_stat_statements
 * on each node (`observe`) and `inet_server_port()` in the rows themselves, and for some
 * scenarios from pgpulse's own counters as well.
 *
 * The same scenarios against drizzle's `withReplicas` are in comparison.test.ts.
 *
 * Scenarios that change the topology come last: killing a replica here; primary failover
 * (writes resume) is added with core's failover work, in its own describe block with its own
 * sandbox, since it promotes a replica.
 */
import { type Cluster, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { eq, inArray, sql, TransactionRollbackError } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PgPulseDatabase, withPgPulse } from './index.js';
import { nodeAt, observe } from './testing/observe.js';
import { DDL, postCounts, posts, schema, users } from './testing/schema.js';

const REPLICAS = ['replica1', 'replica2'];
const port = sql<number>`inet_server_port()`;
const backend = sql<number>`pg_backend_pid()`;

/** At least one statement ran, and only on replicas. */
function expectReplicasOnly(nodes: readonly string[]): void {
  expect(nodes.length).toBeGreaterThan(0);
  for (const node of nodes) expect(REPLICAS).toContain(node);
}

/**
 * pgpulse's read-your-writes keeps every statement made outside a context in one process-wide
 * context, where any write sends reads to the primary until the replicas have replayed it. A
 * web app runs each request in its own context (`cluster.context`); so do these scenarios, so
 * that one scenario's writes do not decide where the next one's reads go.
 */
function inRequest<T>(cluster: Cluster, fn: () => Promise<T>): () => Promise<T> {
  return () => cluster.context(fn);
}

/** pgpulse's view: the roles whose statement counters moved while `fn` ran. */
async function servedBy(cluster: Cluster, fn: () => Promise<unknown>): Promise<string[]> {
  const before = new Map(cluster.stats().nodes.map((n) => [n.name, n.counters.queries]));
  await fn();
  return cluster
    .stats()
    .nodes.filter((n) => n.counters.queries > (before.get(n.name) ?? 0))
    .map((n) => n.role);
}

describe('withPgPulse: drizzle over a pgpulse cluster (1 primary + 2 replicas)', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let db: PgPulseDatabase<typeof schema>;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query('primary', DDL);
    await sandbox.waitForReplay();
    cluster = newCluster();
    await cluster.ready();
    db = withPgPulse(cluster, { schema });
  });

  function newCluster(): Cluster {
    return createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      pool: { maxSize: 4 },
    });
  }

  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  it('is a drizzle database on the cluster pool', () => {
    expect(db.$client).toBe(cluster.pool);
    expect(db.$cluster).toBe(cluster);
  });

  describe('reads go to replicas', () => {
    it('select builders', async () => {
      const { value, nodes } = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const rows = await db
            .select({ id: users.id, port })
            .from(users)
            .where(eq(users.name, 'alice'));
          const distinct = await db.selectDistinct({ name: users.name }).from(users);
          const distinctOn = await db
            .selectDistinctOn([posts.userId], { userId: posts.userId })
            .from(posts)
            .orderBy(posts.userId);
          const joined = await db
            .select({ name: users.name, title: posts.title })
            .from(users)
            .innerJoin(posts, eq(posts.userId, users.id))
            .orderBy(posts.id);
          return { rows, distinct, distinctOn, joined };
        }),
      );
      expectReplicasOnly(nodes);
      expect(value.rows).toHaveLength(1);
      expect(value.rows[0]!.id).toBe(1);
      expect(REPLICAS).toContain(nodeAt(sandbox, value.rows[0]!.port));
      expect(value.distinct.length).toBeGreaterThanOrEqual(3);
      expect(value.distinctOn.map((r) => r.userId)).toEqual([1, 2]);
      expect(value.joined.slice(0, 3).map((r) => r.title)).toEqual(['a1', 'a2', 'b1']);
    });

    it('relational queries (findMany / findFirst with `with`)', async () => {
      const { value, nodes } = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const many = await db.query.users.findMany({
            where: eq(users.id, 1),
            with: { posts: { orderBy: posts.id } },
            extras: { port: sql<number>`inet_server_port()`.as('port') },
          });
          const first = await db.query.posts.findFirst({
            where: eq(posts.title, 'b1'),
            with: { author: true },
          });
          return { many, first };
        }),
      );
      expectReplicasOnly(nodes);
      expect(value.many[0]!.posts.slice(0, 2).map((p) => p.title)).toEqual(['a1', 'a2']);
      expect(REPLICAS).toContain(nodeAt(sandbox, value.many[0]!.port));
      expect(value.first?.author.name).toBe('bob');
    });

    it('$count, and a $with CTE read through db.with(...).select()', async () => {
      const { value, nodes } = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const total = await db.$count(users);
          const alices = await db.$count(users, eq(users.name, 'alice'));
          const authors = db
            .$with('authors')
            .as(db.selectDistinct({ id: posts.userId }).from(posts));
          const viaCte = await db
            .with(authors)
            .select({ name: users.name, port })
            .from(users)
            .where(inArray(users.id, db.select({ id: authors.id }).from(authors)))
            .orderBy(users.id);
          return { total, alices, viaCte };
        }),
      );
      expectReplicasOnly(nodes);
      expect(value.total).toBeGreaterThanOrEqual(3);
      expect(value.alices).toBe(1);
      expect(value.viaCte.slice(0, 2).map((r) => r.name)).toEqual(['alice', 'bob']);
      for (const row of value.viaCte) expect(REPLICAS).toContain(nodeAt(sandbox, row.port));
    });

    it('raw reads: db.execute(sql`select ...`) and db.execute(string)', async () => {
      const { value, nodes } = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const tagged = await db.execute<{ port: number; n: number }>(
            sql`select inet_server_port() as port, count(*)::int as n from ${users} where ${users.id} > ${0}`,
          );
          const text = await db.execute<{ port: number }>(
            'select inet_server_port() as port from dz_users limit 1',
          );
          return { tagged: tagged.rows[0]!, text: text.rows[0]! };
        }),
      );
      expectReplicasOnly(nodes);
      expect(REPLICAS).toContain(nodeAt(sandbox, value.tagged.port));
      expect(REPLICAS).toContain(nodeAt(sandbox, value.text.port));
      expect(value.tagged.n).toBeGreaterThanOrEqual(3);
    });

    it('named prepared statements', async () => {
      const byName = db
        .select({ id: users.id, port })
        .from(users)
        .where(eq(users.name, sql.placeholder('name')))
        .prepare('dz_user_by_name');
      const { value, nodes } = await observe(
        sandbox,
        inRequest(cluster, async () => [
          ...(await byName.execute({ name: 'alice' })),
          ...(await byName.execute({ name: 'bob' })),
          ...(await byName.execute({ name: 'carol' })),
        ]),
      );
      expectReplicasOnly(nodes);
      expect(value.map((r) => r.id)).toEqual([1, 2, 3]);
      for (const row of value) expect(REPLICAS).toContain(nodeAt(sandbox, row.port));
    });

    it("pgpulse's counters agree: a drizzle read counts on a replica, a write on the primary", async () => {
      expect(
        await servedBy(
          cluster,
          inRequest(cluster, async () => db.select().from(users).limit(1)),
        ),
      ).toEqual(['replica']);
      expect(
        await servedBy(cluster, () =>
          db.update(users).set({ email: 'alice@example.com' }).where(eq(users.id, 1)),
        ),
      ).toEqual(['primary']);
    });
  });

  describe('writes go to the primary', () => {
    it('insert / update / delete with returning', async () => {
      const { value, nodes } = await observe(sandbox, async () => {
        const [inserted] = await db
          .insert(users)
          .values({ name: 'dave' })
          .returning({ id: users.id, port });
        const [updated] = await db
          .update(users)
          .set({ email: 'dave@example.com' })
          .where(eq(users.id, inserted!.id))
          .returning({ email: users.email, port });
        const [deleted] = await db
          .delete(users)
          .where(eq(users.id, inserted!.id))
          .returning({ id: users.id, port });
        const conflict = await db
          .insert(users)
          .values({ id: 1, name: 'alice' })
          .onConflictDoUpdate({ target: users.id, set: { name: 'alice' } })
          .returning({ port });
        return [inserted!, updated!, deleted!, conflict[0]!];
      });
      expect(nodes).toEqual(['primary']);
      for (const row of value) expect(nodeAt(sandbox, row.port)).toBe('primary');
      expect(value[1]).toMatchObject({ email: 'dave@example.com' });
    });

    it('db.with(cte).update(...): an UPDATE led by a read CTE', async () => {
      const target = db
        .$with('target')
        .as(db.select({ id: users.id }).from(users).where(eq(users.name, 'bob')));
      const { value, nodes, ran } = await observe(sandbox, () =>
        db
          .with(target)
          .update(users)
          .set({ email: 'bob@cte.example' })
          .where(inArray(users.id, db.select({ id: target.id }).from(target)))
          .returning({ id: users.id, port }),
      );
      expect(nodes).toEqual(['primary']);
      expect(ran.primary!.some((q) => /^with .*update/is.test(q))).toBe(true);
      expect(value).toHaveLength(1);
      expect(nodeAt(sandbox, value[0]!.port)).toBe('primary');
    });

    it('a writable CTE: db.with($with(...).as(update ... returning)).select()', async () => {
      const touched = db
        .$with('touched')
        .as(
          db
            .update(users)
            .set({ email: 'carol@cte.example' })
            .where(eq(users.name, 'carol'))
            .returning({ id: users.id }),
        );
      const { value, nodes } = await observe(sandbox, () =>
        db.with(touched).select({ id: touched.id, port }).from(touched),
      );
      expect(nodes).toEqual(['primary']);
      expect(nodeAt(sandbox, value[0]!.port)).toBe('primary');
      const [row] = await sandbox.query<{ email: string }>(
        'primary',
        "SELECT email FROM dz_users WHERE name = 'carol'",
      );
      expect(row!.email).toBe('carol@cte.example');
    });

    it('select ... for update outside a transaction', async () => {
      const { value, nodes, ran } = await observe(sandbox, () =>
        db.select({ id: users.id, port }).from(users).where(eq(users.id, 1)).for('update'),
      );
      expect(nodes).toEqual(['primary']);
      expect(ran.primary!.some((q) => /for update/i.test(q))).toBe(true);
      expect(nodeAt(sandbox, value[0]!.port)).toBe('primary');
    });

    it('raw writes: db.execute(sql`update ...`)', async () => {
      const { value, nodes } = await observe(sandbox, () =>
        db.execute<{ port: number }>(
          sql`update ${users} set email = email where ${users.id} = ${1} returning inet_server_port() as port`,
        ),
      );
      expect(nodes).toEqual(['primary']);
      expect(nodeAt(sandbox, value.rows[0]!.port)).toBe('primary');
    });

    it('refreshMaterializedView', async () => {
      await db.insert(posts).values({ userId: 3, title: 'c1' });
      const { nodes, ran } = await observe(sandbox, () => db.refreshMaterializedView(postCounts));
      expect(nodes).toEqual(['primary']);
      expect(ran.primary!.some((q) => /refresh materialized view/i.test(q))).toBe(true);
      const counts = await db.$primary.select().from(postCounts).orderBy(postCounts.userId);
      expect(counts.find((c) => c.userId === 3)?.n).toBe(1);
    });
  });

  describe('transactions run on one primary connection', () => {
    it('every statement, FOR UPDATE, relational, raw, $count and nested savepoints', async () => {
      const { value, nodes, ran } = await observe(sandbox, () =>
        db.transaction(async (tx) => {
          const at: { port: number; pid: number }[] = [];
          const locked = await tx
            .select({ port, pid: backend })
            .from(users)
            .where(eq(users.id, 1))
            .for('update');
          at.push(locked[0]!);
          const updated = await tx
            .update(users)
            .set({ email: 'tx@example.com' })
            .where(eq(users.id, 1))
            .returning({ port, pid: backend });
          at.push(updated[0]!);
          const found = await tx.query.users.findFirst({
            where: eq(users.id, 1),
            with: { posts: true },
            extras: {
              port: sql<number>`inet_server_port()`.as('port'),
              pid: sql<number>`pg_backend_pid()`.as('pid'),
            },
          });
          at.push(found!);
          const raw = await tx.execute<{ port: number; pid: number }>(
            sql`select inet_server_port() as port, pg_backend_pid() as pid from ${users} limit 1`,
          );
          at.push(raw.rows[0]!);
          const count = await tx.$count(users);
          await tx.transaction(async (nested) => {
            const inner = await nested
              .insert(posts)
              .values({ userId: 1, title: 'tx-nested' })
              .returning({ port, pid: backend });
            at.push(inner[0]!);
          });
          await expect(
            tx.transaction(async (nested) => {
              await nested.insert(posts).values({ userId: 1, title: 'tx-rolled-back' });
              nested.rollback();
            }),
          ).rejects.toThrow(TransactionRollbackError);
          // The transaction sees its own write even though the replicas do not have it yet.
          return { at, count, email: found?.email };
        }),
      );
      expect(nodes).toEqual(['primary']);
      expect(ran.primary!.some((q) => /for update/i.test(q))).toBe(true);
      expect(new Set(value.at.map((a) => `${a.port}:${a.pid}`)).size).toBe(1);
      expect(nodeAt(sandbox, value.at[0]!.port)).toBe('primary');
      expect(value.email).toBe('tx@example.com');
      expect(value.count).toBeGreaterThanOrEqual(3);
      const titles = await sandbox.query<{ title: string }>(
        'primary',
        "SELECT title FROM dz_posts WHERE title LIKE 'tx-%' ORDER BY title",
      );
      expect(titles.map((t) => t.title)).toEqual(['tx-nested']);
    });

    it('a failed transaction rolls back on the primary', async () => {
      await expect(
        db.transaction(async (tx) => {
          await tx.insert(users).values({ name: 'ghost' });
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      const ghosts = await sandbox.query('primary', "SELECT 1 FROM dz_users WHERE name = 'ghost'");
      expect(ghosts).toEqual([]);
    });

    it("a read-only transaction (accessMode: 'read only') runs on one replica connection; on $primary, on the primary", async () => {
      const readOnly = async (on: typeof db | typeof db.$primary) =>
        on.transaction(
          async (tx) => {
            const a = await tx.select({ port, pid: backend }).from(users).limit(1);
            const b = await tx.query.posts.findMany({
              extras: {
                port: sql<number>`inet_server_port()`.as('port'),
                pid: sql<number>`pg_backend_pid()`.as('pid'),
              },
            });
            return [a[0]!, ...b];
          },
          { accessMode: 'read only' },
        );
      const onReplica = await observe(
        sandbox,
        inRequest(cluster, () => readOnly(db)),
      );
      expectReplicasOnly(onReplica.nodes);
      expect(onReplica.nodes).toHaveLength(1);
      expect(new Set(onReplica.value.map((a) => `${a.port}:${a.pid}`)).size).toBe(1);
      const onPrimary = await observe(
        sandbox,
        inRequest(cluster, () => readOnly(db.$primary)),
      );
      expect(onPrimary.nodes).toEqual(['primary']);
      expect(new Set(onPrimary.value.map((a) => `${a.port}:${a.pid}`)).size).toBe(1);
    });
  });

  // Each check runs in a fresh request context next to a control read that goes to a replica
  // there, so "primary" below is the override's doing, not the consistency guard's.
  describe('$primary, $replica and consistency overrides', () => {
    it('$primary sends every statement, reads included, to the primary', async () => {
      const { value, nodes } = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const control = await db.select({ port }).from(users).limit(1);
          const rows = await db.$primary.select({ port }).from(users).limit(1);
          const rel = await db.$primary.query.users.findMany({
            with: { posts: true },
            extras: { port: sql<number>`inet_server_port()`.as('port') },
          });
          const count = await db.$primary.$count(users);
          const raw = await db.$primary.execute<{ port: number }>(
            sql`select inet_server_port() as port from ${users} limit 1`,
          );
          return { ports: [rows[0]!.port, rel[0]!.port, raw.rows[0]!.port], count, control };
        }),
      );
      expect(nodes).toContain('primary');
      for (const p of value.ports) expect(nodeAt(sandbox, p)).toBe('primary');
      expect(REPLICAS).toContain(nodeAt(sandbox, value.control[0]!.port));
    });

    it('$primary holds for a builder awaited later, outside the call that made it', async () => {
      const later = db.$primary.select({ port }).from(users).limit(1);
      const laterRel = db.$primary.query.users.findFirst({
        extras: { port: sql<number>`inet_server_port()`.as('port') },
      });
      const laterCount = db.$primary.$count(users);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const { value } = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const control = await db.select({ port }).from(users).limit(1);
          const rows = await later;
          const rel = await laterRel;
          await laterCount;
          return { ports: [rows[0]!.port, rel!.port], control: control[0]!.port };
        }),
      );
      for (const p of value.ports) expect(nodeAt(sandbox, p)).toBe('primary');
      expect(REPLICAS).toContain(nodeAt(sandbox, value.control));
    });

    it('the scope follows execution: builders run inside $withConsistency("strong")', async () => {
      // Each case in its own context, the replica control first: after a read on the primary,
      // monotonic reads keep a context there for a while.
      const made = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const control = await db.select({ port }).from(users).limit(1);
          const builder = db.select({ port }).from(users).limit(1);
          // Made outside the block, awaited inside it.
          const inside = await db.$withConsistency('strong', async () => await builder);
          return { control: control[0]!.port, inside: inside[0]!.port };
        }),
      );
      expect(REPLICAS).toContain(nodeAt(sandbox, made.value.control));
      expect(nodeAt(sandbox, made.value.inside)).toBe('primary');
      const returned = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const control = await db.select({ port }).from(users).limit(1);
          // Made in the block and returned unawaited: `await` calls its `then` outside the
          // block, yet it runs inside it.
          const rows = await db.$withConsistency('strong', () =>
            db.select({ port }).from(users).limit(1),
          );
          return { control: control[0]!.port, returned: rows[0]!.port };
        }),
      );
      expect(REPLICAS).toContain(nodeAt(sandbox, returned.value.control));
      expect(nodeAt(sandbox, returned.value.returned)).toBe('primary');
    });

    it("$consistency('strong') is a database whose reads go to the primary", async () => {
      const strong = db.$consistency('strong');
      expect(db.$consistency('strong')).toBe(strong);
      const { value } = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const viaStrong = await strong.select({ port }).from(users).limit(1);
          const viaEventual = await db
            .$consistency('eventual')
            .select({ port })
            .from(users)
            .limit(1);
          return { strong: viaStrong[0]!.port, eventual: viaEventual[0]!.port };
        }),
      );
      expect(nodeAt(sandbox, value.strong)).toBe('primary');
      expect(REPLICAS).toContain(nodeAt(sandbox, value.eventual));
    });

    it('$replica writes still go to the primary', async () => {
      const { value, nodes } = await observe(sandbox, () =>
        db.$replica
          .update(users)
          .set({ email: 'bob@example.com' })
          .where(eq(users.id, 2))
          .returning({ port }),
      );
      expect(nodes).toEqual(['primary']);
      expect(nodeAt(sandbox, value[0]!.port)).toBe('primary');
    });
  });

  describe('read-your-writes (replicas apply WAL 500 ms late)', () => {
    beforeAll(async () => {
      for (const name of REPLICAS) await sandbox.setApplyDelay(name, 500);
    });
    afterAll(async () => {
      for (const name of REPLICAS) await sandbox.setApplyDelay(name, 0);
      await sandbox.waitForReplay();
    });

    it('a read right after a write in the same context sees the write', async () => {
      const name = `ryw-${Date.now()}`;
      const { value } = await observe(sandbox, () =>
        db.$withConsistency('read-your-writes', async () => {
          const [created] = await db.insert(users).values({ name }).returning({ id: users.id });
          const selected = await db
            .select({ id: users.id, port })
            .from(users)
            .where(eq(users.name, name));
          const relational = await db.query.users.findFirst({ where: eq(users.name, name) });
          const count = await db.$count(users, eq(users.name, name));
          return { created: created!, selected, relational, count };
        }),
      );
      expect(value.selected.map((r) => r.id)).toEqual([value.created.id]);
      expect(value.relational?.id).toBe(value.created.id);
      expect(value.count).toBe(1);
    });

    it('in a request context (cluster.context), plain db calls read their own write', async () => {
      const name = `ctx-${Date.now()}`;
      const { value, ran } = await observe(
        sandbox,
        inRequest(cluster, async () => {
          const [created] = await db.insert(users).values({ name }).returning({ id: users.id });
          const rows = await db.select({ id: users.id }).from(users).where(eq(users.name, name));
          // A write through $primary belongs to the same request.
          await db.$primary
            .update(users)
            .set({ email: `${name}@x` })
            .where(eq(users.name, name));
          const updated = await db.query.users.findFirst({ where: eq(users.name, name) });
          return { created: created!, rows, email: updated?.email };
        }),
      );
      expect(ran.primary!.some((q) => /^insert/i.test(q))).toBe(true);
      expect(value.rows.map((r) => r.id)).toEqual([value.created.id]);
      expect(value.email).toBe(`${name}@x`);
    });

    // Outside any context the process-wide context applies; a new cluster has a clean one, so
    // earlier scenarios' writes cannot send these reads to the primary by accident.
    it('outside any context: a write through $primary, then a plain read, sees the write', async () => {
      const fresh = withPgPulse(newCluster(), { schema });
      try {
        const name = `primary-then-plain-${Date.now()}`;
        await fresh.$primary.insert(users).values({ name });
        const rows = await fresh.select({ id: users.id }).from(users).where(eq(users.name, name));
        expect(rows).toHaveLength(1);
      } finally {
        await fresh.$cluster.close();
      }
    });

    it("outside any context: $consistency('read-your-writes') reads its own write", async () => {
      const fresh = withPgPulse(newCluster(), { schema });
      try {
        const name = `ryw-db-${Date.now()}`;
        const ryw = fresh.$consistency('read-your-writes');
        await ryw.insert(users).values({ name });
        const rows = await ryw.select({ id: users.id }).from(users).where(eq(users.name, name));
        expect(rows).toHaveLength(1);
      } finally {
        await fresh.$cluster.close();
      }
    });

    it('outside any context: a plain write, then a plain read, sees the write', async () => {
      const fresh = withPgPulse(newCluster(), { schema });
      try {
        const name = `plain-${Date.now()}`;
        await fresh.insert(users).values({ name });
        const rows = await fresh.select({ id: users.id }).from(users).where(eq(users.name, name));
        expect(rows).toHaveLength(1);
      } finally {
        await fresh.$cluster.close();
      }
    });

    it('$replica reads from a replica even right after a write (and here it is stale)', async () => {
      const name = `stale-${Date.now()}`;
      const { value, nodes, ran } = await observe(sandbox, () =>
        db.$withConsistency('read-your-writes', async () => {
          await db.insert(users).values({ name });
          return db.$replica.select({ id: users.id }).from(users).where(eq(users.name, name));
        }),
      );
      expect(value).toEqual([]);
      expect(ran.primary!.some((q) => /^insert/i.test(q))).toBe(true);
      expectReplicasOnly(nodes.filter((n) => n !== 'primary'));
      expect(ran.primary!.some((q) => /^select/i.test(q))).toBe(false);
    });
  });

  describe('faults', () => {
    it('one replica killed: reads still succeed', async () => {
      await sandbox.kill('replica1');
      try {
        const ports: number[] = [];
        for (let i = 0; i < 20; i++) {
          await inRequest(cluster, async () => {
            const rows = await db.select({ port }).from(users).limit(1);
            const rel = await db.query.users.findFirst({
              extras: { port: sql<number>`inet_server_port()`.as('port') },
            });
            await db.$count(users);
            ports.push(rows[0]!.port, rel!.port);
          })();
        }
        const served = new Set(ports.map((p) => nodeAt(sandbox, p)));
        expect(served.has('replica1')).toBe(false);
        expect(served.has('replica2')).toBe(true);
      } finally {
        await sandbox.start('replica1');
      }
    });
  });
});
