import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { zonedPools } from '@pgpulse/sandbox/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PartitioningError } from '../../errors/index.js';
import { type PartitionConnectionProvider, PartitionManager } from '../partition-manager.js';

/**
 * setup(strategy, { migrate }) on a plain table, against a real PostgreSQL: 50 000 rows over 30
 * days converted to daily partitions while a writer inserts, updates and deletes throughout.
 * Invariants only (no timing bounds beyond a generous sanity ceiling): the shared 2-core CI
 * machine decides the speed.
 */

let sandbox: SandboxCluster;
let admin: pg.Pool;
/** The manager's sessions use another zone and date style: the keyset must round-trip anyway. */
let app: pg.Pool;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 0 });
  ({ admin, app } = zonedPools(sandbox.primary.url, { adminMax: 4 }));
}, 120_000);

afterAll(async () => {
  await admin?.end();
  await app?.end();
  await sandbox?.stop();
});

const connect: PartitionConnectionProvider = async () => {
  const client = await app.connect();
  return { client, release: (destroy) => client.release(destroy === true ? true : undefined) };
};

const DAY = 86_400_000;

interface Writer {
  readonly inserted: string[];
  readonly deleted: Set<string>;
  readonly updated: Set<string>;
  readonly errors: unknown[];
  maxMs: number;
  stop(): Promise<void>;
}

/**
 * One connection, one statement at a time, as fast as it goes: inserts (half dated now, half
 * in the last 30 days), and every fifth loop an update or a delete of a row that was there
 * before the migration. Records every id it was told about and the slowest statement.
 */
function startWriter(table: string, initialRows: number): Writer {
  const client = new pg.Client({ connectionString: sandbox.primary.url });
  const w: Writer = {
    inserted: [],
    deleted: new Set(),
    updated: new Set(),
    errors: [],
    maxMs: 0,
    stop: async () => {},
  };
  let running = true;
  const loop = (async () => {
    await client.connect();
    for (let i = 0; running; i++) {
      const started = performance.now();
      try {
        if (i % 5 === 4) {
          const id = String(1 + ((i * 7919) % initialRows));
          if (w.deleted.has(id) || w.updated.has(id)) continue;
          if (i % 10 === 4) {
            await client.query(`UPDATE ${table} SET note = 'updated' WHERE id = $1`, [id]);
            w.updated.add(id);
          } else {
            await client.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
            w.deleted.add(id);
          }
        } else {
          const ts = i % 2 === 0 ? new Date() : new Date(Date.now() - ((i * 37) % 29) * DAY);
          // A named prepared statement: planned against the plain table, it must follow the
          // name to the partitioned one after the swap (PostgreSQL re-analyses it).
          const r = await client.query<{ id: string }>({
            name: 'writer-insert',
            text: `INSERT INTO ${table} (ts, device, note) VALUES ($1, $2, 'w') RETURNING id`,
            values: [ts, i % 100],
          });
          w.inserted.push(r.rows[0]!.id);
        }
      } catch (error) {
        w.errors.push(error);
      }
      w.maxMs = Math.max(w.maxMs, performance.now() - started);
    }
    await client.end();
  })();
  w.stop = async () => {
    running = false;
    await loop;
  };
  return w;
}

describe('setup({ migrate }): a plain table converted to partitions online', () => {
  it('50 000 rows over 30 days to daily partitions while a writer inserts, updates and deletes: no row lost, every row in its partition', async () => {
    await admin.query(`
      CREATE SCHEMA app;
      CREATE TABLE app.events (
        id bigint GENERATED ALWAYS AS IDENTITY,
        ts timestamptz NOT NULL DEFAULT now(),
        device int NOT NULL,
        note text,
        note_length int GENERATED ALWAYS AS (length(note)) STORED,
        PRIMARY KEY (id, ts)
      );
      CREATE INDEX events_device ON app.events (device);
      COMMENT ON TABLE app.events IS 'device events';
      INSERT INTO app.events (ts, device, note)
        SELECT now() - (g % 30) * interval '1 day' - (g % 86400) * interval '1 second', g % 100, 'seed'
          FROM generate_series(1, 50000) g;
      ANALYZE app.events;`);
    const writer = startWriter('app.events', 50_000);
    // Let the writer get going on the plain table first.
    while (writer.inserted.length < 200) await new Promise((r) => setTimeout(r, 20));
    const manager = new PartitionManager(connect, [], { lockTimeoutMs: 1000 });
    let batches = 0;
    const result = await manager.setup(
      {
        schema: 'app',
        table: 'events',
        column: 'ts',
        type: 'range',
        interval: 'daily',
        premake: 3,
      },
      { migrate: { batchSize: 2000, onProgress: () => batches++ } },
    );
    // And keep writing to the partitioned table for a moment.
    const after = writer.inserted.length;
    while (writer.inserted.length < after + 200) await new Promise((r) => setTimeout(r, 20));
    await writer.stop();

    expect(writer.errors).toEqual([]);
    const migration = result.migration!;
    expect(result.status).toBe('done');
    expect(migration.rowsRead).toBeGreaterThanOrEqual(50_000 - writer.deleted.size);
    expect(migration.batches).toBe(batches);
    expect(migration.oldTable).toBe('events_old');
    // Loose ceilings, not speed: writers were held only for catalog-only transactions.
    expect(migration.swapMs).toBeLessThan(10_000);
    expect(writer.maxMs).toBeLessThan(15_000);

    const [kind] = (
      await admin.query<{ kind: string }>(
        "SELECT relkind::text AS kind FROM pg_class WHERE oid = 'app.events'::regclass",
      )
    ).rows;
    expect(kind!.kind).toBe('p');
    // Every row the writer was told about, and every seeded row it did not delete, is there.
    const ids = new Set(
      (await admin.query<{ id: string }>('SELECT id::text AS id FROM app.events')).rows.map(
        (r) => r.id,
      ),
    );
    const expected = new Set<string>(writer.inserted);
    for (let id = 1; id <= 50_000; id++)
      if (!writer.deleted.has(String(id))) expected.add(String(id));
    const missing = [...expected].filter((id) => !ids.has(id));
    const extra = [...ids].filter((id) => !expected.has(id));
    expect({ missing: missing.slice(0, 5), extra: extra.slice(0, 5) }).toEqual({
      missing: [],
      extra: [],
    });
    expect(ids.size).toBe(expected.size);
    // Updates made during the copy reached the partitioned table.
    const updated = (
      await admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM app.events WHERE note = 'updated' AND id = ANY ($1::bigint[])",
        [[...writer.updated]],
      )
    ).rows[0]!.n;
    expect(updated).toBe(writer.updated.size);
    // Each row sits in the partition of its UTC day.
    const misplaced = await admin.query(
      `SELECT tableoid::regclass::text AS part, ts FROM app.events
        WHERE tableoid::regclass::text <> 'app.events_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMMDD')
        LIMIT 3`,
    );
    expect(misplaced.rows).toEqual([]);
    // The identity goes on from where the plain table's left off.
    const maxBefore = Math.max(...[...expected].map(Number));
    const next = (
      await admin.query<{ id: string }>('INSERT INTO app.events (device) VALUES (1) RETURNING id')
    ).rows[0]!.id;
    expect(Number(next)).toBeGreaterThan(maxBefore);
    // The generated column, the index, the comment came along.
    const shape = (
      await admin.query(
        `SELECT obj_description('app.events'::regclass, 'pg_class') AS comment,
                (SELECT count(*)::int FROM app.events WHERE note_length <> length(note)) AS bad_generated,
                (SELECT count(*)::int FROM pg_index WHERE indrelid = 'app.events'::regclass) AS indexes`,
      )
    ).rows[0];
    expect(shape).toEqual({ comment: 'device events', bad_generated: 0, indexes: 2 });
    // ...under the plain table's names, which the old table gave up.
    const names = (
      await admin.query<{ name: string }>(
        `SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = 'app.events'::regclass
         UNION ALL SELECT pg_get_serial_sequence('app.events', 'id')
         UNION ALL SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'app.events_old'::regclass
         ORDER BY 1`,
      )
    ).rows.map((r) => r.name);
    expect(names).toEqual([
      'app.events_device',
      'app.events_device_old',
      'app.events_id_seq',
      'app.events_pkey',
      'app.events_pkey_old',
    ]);
    // The report lists the partitions with their sizes: the 29 days before today (one more when
    // the seed's offsets reach past midnight, depending on the time of day), today, 3 ahead.
    const parts = migration.partitions.partitions;
    expect(parts.length).toBeGreaterThanOrEqual(29 + 1 + 3);
    expect(parts.every((p) => p.bytes > 0)).toBe(true);
    expect(parts.filter((p) => (p.rows ?? 0) > 0).length).toBeGreaterThanOrEqual(30);
    // The old table is kept, off the writers' path, and no trigger or function is left.
    const old = (await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM app.events_old'))
      .rows[0]!.n;
    expect(old).toBeGreaterThan(0);
    const leftovers = (
      await admin.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'pgpulse%')::int
              + (SELECT count(*) FROM pg_proc WHERE proname LIKE '%pgpulse%')::int AS n`,
      )
    ).rows[0]!.n;
    expect(leftovers).toBe(0);
  });

  it('a primary key without the partition column is refused with the fix, and the table is left as it was', async () => {
    await admin.query(`
      CREATE TABLE public.orders (id serial PRIMARY KEY, placed_at timestamptz NOT NULL DEFAULT now());
      INSERT INTO public.orders (placed_at) SELECT now() - g * interval '1 hour' FROM generate_series(1, 100) g;`);
    const manager = new PartitionManager(connect, []);
    const error = await manager
      .setup(
        { table: 'orders', column: 'placed_at', type: 'range', interval: 'daily' },
        { migrate: true },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PartitioningError);
    expect(error).toMatchObject({
      kind: 'key-not-in-unique',
      code: 'PGPULSE_PARTITION_KEY_NOT_IN_UNIQUE',
      retriable: false,
    });
    expect((error as Error).message).toContain(
      'ALTER TABLE "public"."orders" DROP CONSTRAINT "orders_pkey", ADD PRIMARY KEY ("id", "placed_at")',
    );
    const kind = (
      await admin.query<{ kind: string }>(
        "SELECT relkind::text AS kind FROM pg_class WHERE oid = 'public.orders'::regclass",
      )
    ).rows[0]!.kind;
    expect(kind).toBe('r');
    // Without migrate a plain table is still an error, not a conversion.
    await expect(
      manager.setup({ table: 'orders', column: 'placed_at', type: 'range', interval: 'daily' }),
    ).rejects.toMatchObject({ kind: 'not-partitioned' });
  });

  it('a long transaction on the table makes the swap time out: lock-timeout (retriable), writes go on, and the next setup finishes the job', async () => {
    await admin.query(`
      CREATE TABLE public.readings (id bigserial, at timestamptz NOT NULL, v int, PRIMARY KEY (id, at));
      INSERT INTO public.readings (at, v) SELECT now() - g * interval '1 minute', g FROM generate_series(1, 2000) g;`);
    const reader = await admin.connect();
    await reader.query('BEGIN');
    await reader.query('SELECT count(*) FROM public.readings');
    const manager = new PartitionManager(connect, [], { lockRetries: 1, retryDelayMs: 10 });
    const strategy = {
      table: 'readings',
      column: 'at',
      type: 'range',
      interval: 'daily',
    } as const;
    const error = await manager
      .setup(strategy, { migrate: { lockTimeoutMs: 100 } })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'lock-timeout', retriable: true });
    // Still the plain table, still writable; the mirror trigger could not be removed while the
    // reader holds its lock, and keeps the copy up to date.
    await admin.query('INSERT INTO public.readings (at, v) VALUES (now(), -1)');
    const kind = (
      await admin.query<{ kind: string }>(
        "SELECT relkind::text AS kind FROM pg_class WHERE oid = 'public.readings'::regclass",
      )
    ).rows[0]!.kind;
    expect(kind).toBe('r');
    await reader.query('COMMIT');
    reader.release();
    const result = await manager.setup(strategy, { migrate: true });
    expect(result.migration?.rowsRead).toBe(2001);
    const n = (await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM public.readings'))
      .rows[0]!.n;
    expect(n).toBe(2001);
  });

  it('odd names, a serial column and a DEFAULT partition: quoted exactly, the sequence keeps counting, the old table dropped', async () => {
    await admin.query(`
      CREATE SCHEMA "My ""Shop""";
      CREATE TABLE "My ""Shop"""."Order Lines" (
        "Line No" serial, "Day" date NOT NULL, qty int, PRIMARY KEY ("Line No", "Day"));
      INSERT INTO "My ""Shop"""."Order Lines" ("Day", qty)
        SELECT current_date - (g % 10), g FROM generate_series(1, 1000) g;
      CREATE TABLE public."Order Lines" (x int);`);
    const manager = new PartitionManager(connect, []);
    const result = await manager.setup(
      {
        schema: 'My "Shop"',
        table: 'Order Lines',
        column: 'Day',
        type: 'range',
        interval: 'daily',
        default: true,
      },
      { migrate: { dropOld: true } },
    );
    expect(result.migration).toMatchObject({ oldTable: undefined, rowsRead: 1000 });
    expect(result.created.some((c) => c.bound === 'DEFAULT')).toBe(true);
    const counts = (
      await admin.query<{ n: number; parts: number; same: number }>(
        `SELECT (SELECT count(*)::int FROM "My ""Shop"""."Order Lines") AS n,
                (SELECT count(*)::int FROM pg_inherits WHERE inhparent = '"My ""Shop"""."Order Lines"'::regclass) AS parts,
                (SELECT count(*)::int FROM public."Order Lines") AS same`,
      )
    ).rows[0]!;
    expect(counts.n).toBe(1000);
    expect(counts.parts).toBeGreaterThanOrEqual(10);
    expect(counts.same).toBe(0);
    const next = await admin.query<{ line: number }>(
      `INSERT INTO "My ""Shop"""."Order Lines" ("Day", qty) VALUES (current_date, 1) RETURNING "Line No" AS line`,
    );
    expect(next.rows[0]!.line).toBe(1001);
    // A NULL-free key outside every range goes to the DEFAULT partition.
    await admin.query(
      `INSERT INTO "My ""Shop"""."Order Lines" ("Day", qty) VALUES (DATE '2001-01-01', 1)`,
    );
  });
});
