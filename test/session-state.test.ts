// Session state on pooled connections (issue 20): what one borrower does to a connection never
// reaches the next one, and nothing silently changes connection under a client.
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { objectForm } from '@pgpulse/sandbox/testing';
import Cursor from 'pg-cursor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  ConfigError,
  createCluster,
  type PoolingMode,
  type ResetOnRelease,
  SessionOnPoolError,
  TransactionOnPoolError,
} from '../packages/core/src/index.js';

let sandbox: SandboxCluster;
let user: string;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
  user = decodeURIComponent(new URL(sandbox.primary.url).username);
  await sandbox.query(
    'primary',
    `CREATE ROLE r1 NOSUPERUSER;
     GRANT ALL ON SCHEMA public TO r1;
     CREATE SCHEMA leak;
     CREATE TABLE items (id int PRIMARY KEY, n int);
     INSERT INTO items VALUES (1, 0);
     GRANT ALL ON items TO r1;
     CREATE SEQUENCE seq;
     GRANT ALL ON SEQUENCE seq TO r1;
     CREATE FUNCTION set_path() RETURNS int LANGUAGE plpgsql AS
       $$ BEGIN PERFORM set_config('search_path', 'leak', false); RETURN 1; END $$;
     CREATE FUNCTION become_r1() RETURNS int LANGUAGE plpgsql AS
       $$ BEGIN PERFORM set_config('role', 'r1', false); RETURN 1; END $$;
     CREATE FUNCTION leave_objects() RETURNS int LANGUAGE plpgsql AS
       $$ BEGIN
            CREATE TEMP TABLE IF NOT EXISTS leak_tmp (x int);
            PERFORM pg_advisory_lock(4242);
            RETURN 1;
          END $$;`,
  );
  await sandbox.waitForReplay();
});

afterAll(async () => {
  await sandbox?.stop();
});

/** One primary connection at most, so a reused connection is the one the last borrower had. */
function oneConnection(pooling: PoolingMode, resetOnRelease: ResetOnRelease = 'none'): Cluster {
  return createCluster({
    primary: sandbox.primary.url,
    replicas: sandbox.replicas.map((r) => r.url),
    pool: { maxSize: 1, pooling, resetOnRelease },
  });
}

const MODES: readonly PoolingMode[] = ['transaction', 'session', 'statement'];

/** What the next borrowers of the primary see, five times over. */
async function nextBorrowers(cluster: Cluster): Promise<{ path: string; who: string }[]> {
  const seen: { path: string; who: string }[] = [];
  for (let i = 0; i < 5; i++) {
    const { rows } = await cluster.primary(() =>
      cluster.pool.query<{ path: string; who: string }>(
        'SELECT current_setting($1) AS path, current_user AS who',
        ['search_path'],
      ),
    );
    seen.push(rows[0]!);
  }
  return seen;
}

describe.each(MODES)('session changes made inside functions (pooling %s)', (pooling) => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = oneConnection(pooling);
    await cluster.ready();
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('a search_path set by a function through pool.query never reaches the next borrower', async () => {
    const [before] = await nextBorrowers(cluster);
    await cluster.pool.query('SELECT set_path()');
    for (const seen of await nextBorrowers(cluster)) expect(seen.path).toBe(before!.path);
  });

  it('a role taken by a function on a connect() client never reaches the next borrower', async () => {
    const client = await cluster.pool.connect();
    await client.query('SELECT become_r1()');
    // As on a pg client, the change holds for this client's next statements...
    const { rows } = await client.query<{ who: string }>('SELECT current_user AS who');
    const again = await client.query<{ who: string }>('SELECT current_user AS who');
    client.release();
    expect(rows[0]!.who).toBe('r1');
    expect(again.rows[0]!.who).toBe('r1');
    // ...and the pool never passes it on.
    for (const seen of await nextBorrowers(cluster)) expect(seen.who).toBe(user);
  });

  it('a client keeps one connection from nextval to currval', async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, async () => {
        let mismatches = 0;
        for (let i = 0; i < 12; i++) {
          const client = await cluster.pool.connect();
          try {
            const next = await client.query<{ v: string }>("SELECT nextval('seq') AS v");
            const current = await client.query<{ v: string }>("SELECT currval('seq') AS v");
            if (next.rows[0]!.v !== current.rows[0]!.v) mismatches++;
          } finally {
            client.release();
          }
        }
        return mismatches;
      }),
    );
    expect(results).toEqual([0, 0, 0, 0]);
  });

  it('runs BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY on the primary', async () => {
    const client = await cluster.pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE');
      const { rows } = await client.query<{ standby: boolean; iso: string }>(
        "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_isolation') AS iso",
      );
      await client.query('COMMIT');
      expect(rows[0]).toEqual({ standby: false, iso: 'serializable' });
    } finally {
      client.release();
    }
  });
});

describe('transactions through pool.query', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = oneConnection('transaction');
    await cluster.ready();
  });

  afterAll(async () => {
    await cluster?.close();
  });

  const value = async () =>
    (await sandbox.query<{ n: number }>('primary', 'SELECT n FROM items WHERE id = 1'))[0]!.n;

  it.each(['BEGIN', 'START TRANSACTION READ ONLY', 'COMMIT', 'ROLLBACK', 'SAVEPOINT s1'])(
    'refuses %s with an error that says to use pool.connect()',
    async (sql) => {
      const err = await cluster.pool.query(sql).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransactionOnPoolError);
      expect((err as TransactionOnPoolError).code).toBe('PGPULSE_TRANSACTION_ON_POOL');
      expect((err as Error).message).toContain('pool.connect()');
    },
  );

  it('refuses a text that would leave a transaction open, before sending it', async () => {
    const before = await value();
    const err = await cluster.pool
      .query('BEGIN; UPDATE items SET n = n + 1 WHERE id = 1')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionOnPoolError);
    expect(await value()).toBe(before);
  });

  it('runs a whole transaction sent as one text', async () => {
    const before = await value();
    await cluster.pool.query('BEGIN; UPDATE items SET n = n + 1 WHERE id = 1; COMMIT');
    expect(await value()).toBe(before + 1);
  });

  it('keeps the next borrower able to use its named statements after DEALLOCATE ALL', async () => {
    const named = { name: 'w1', text: 'SELECT 1 AS x' };
    const run = () => cluster.primary(() => cluster.pool.query<{ x: number }>(named));
    expect((await run()).rows[0]!.x).toBe(1);
    await cluster.primary(() => cluster.pool.query('DEALLOCATE ALL'));
    expect((await run()).rows[0]!.x).toBe(1);
  });
});

describe('resetOnRelease', () => {
  const leftovers = async (cluster: Cluster) => {
    const { rows } = await cluster.primary(() =>
      cluster.pool.query<{ locks: number; tmp: string | null }>(
        `SELECT (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory'
                   AND pid = pg_backend_pid()) AS locks,
                to_regclass('pg_temp.leak_tmp')::text AS tmp`,
      ),
    );
    return rows[0]!;
  };

  it("'none' leaves what a function created that the server does not report (documented)", async () => {
    const cluster = oneConnection('transaction', 'none');
    try {
      await cluster.pool.query('SELECT leave_objects()');
      const left = await leftovers(cluster);
      expect(left.locks).toBe(1);
      expect(left.tmp).not.toBeNull();
    } finally {
      await cluster.close();
    }
  });

  it.each(['objects', 'all'] as const)(
    "'%s' clears temp tables and advisory locks a function left",
    async (reset) => {
      const cluster = oneConnection('transaction', reset);
      try {
        await cluster.pool.query('SELECT leave_objects()');
        expect(await leftovers(cluster)).toEqual({ locks: 0, tmp: null });
        // The connection was reset, not replaced.
        const created = cluster.stats().nodes.find((n) => n.role === 'primary')!.pool.created;
        expect(created).toBe(1);
      } finally {
        await cluster.close();
      }
    },
  );

  it("'all' keeps pg's named statements working after the reset", async () => {
    const cluster = oneConnection('transaction', 'all');
    try {
      const named = { name: 'w2', text: 'SELECT 2 AS x' };
      for (let i = 0; i < 3; i++) {
        const { rows } = await cluster.primary(() => cluster.pool.query<{ x: number }>(named));
        expect(rows[0]!.x).toBe(2);
      }
    } finally {
      await cluster.close();
    }
  });

  it.each(['objects', 'all'] as const)(
    "'%s' runs on a hot standby: replica connections are reset and reused",
    async (reset) => {
      const cluster = oneConnection('transaction', reset);
      try {
        for (let i = 0; i < 10; i++) {
          const { rows } = await cluster.replica(() =>
            cluster.pool.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby'),
          );
          expect(rows[0]!.standby).toBe(true);
        }
        const replica = cluster.stats().nodes.find((n) => n.role === 'replica')!;
        expect(replica.pool.created).toBe(1);
      } finally {
        await cluster.close();
      }
    },
  );
});

describe('per-connection server settings (the libpq way)', () => {
  const withOptions = (url: string, options: string) => {
    const u = new URL(url);
    u.searchParams.set('options', options);
    return u.toString();
  };

  it('statement_timeout from the URL options cancels a long query with 57014, on every node', async () => {
    const cluster = createCluster({
      primary: withOptions(sandbox.primary.url, '-c statement_timeout=100'),
      replicas: sandbox.replicas.map((r) => withOptions(r.url, '-c statement_timeout=100')),
    });
    try {
      for (const run of [cluster.primary.bind(cluster), cluster.replica.bind(cluster)]) {
        const err = await run(() => cluster.pool.query('SELECT pg_sleep(2)')).catch(
          (e: unknown) => e,
        );
        expect((err as { code?: string }).code).toBe('57014');
      }
    } finally {
      await cluster.close();
    }
  });

  it('top-level settings reach every node, a node’s own win, and values keep their spaces', async () => {
    const cluster = createCluster({
      primary: { ...objectForm(sandbox.primary.url), settings: { lock_timeout: '2s' } },
      replicas: sandbox.replicas.map((r) => r.url),
      settings: { lock_timeout: '1s', search_path: 'leak, public' },
    });
    try {
      const show = (run: typeof cluster.primary) =>
        run(() =>
          cluster.pool.query<{ lock: string; path: string }>(
            "SELECT current_setting('lock_timeout') AS lock, current_setting('search_path') AS path",
          ),
        ).then((r) => r.rows[0]);
      expect(await show(cluster.primary.bind(cluster))).toEqual({
        lock: '2s',
        path: 'leak, public',
      });
      expect(await show(cluster.replica.bind(cluster))).toEqual({
        lock: '1s',
        path: 'leak, public',
      });
    } finally {
      await cluster.close();
    }
  });

  it('rejects a bad setting name or URL options with the field named', () => {
    const bad = (config: Parameters<typeof createCluster>[0]) => {
      try {
        createCluster(config);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const byName = bad({ primary: sandbox.primary.url, settings: { 'bad name': 1 } });
    expect(byName).toBeInstanceOf(ConfigError);
    expect((byName as ConfigError).issues[0]!.field).toBe('settings.bad name');
    const byUrl = bad({ primary: withOptions(sandbox.primary.url, '-x 1') });
    expect(byUrl).toBeInstanceOf(ConfigError);
    expect((byUrl as ConfigError).issues[0]!.field).toBe('primary');
    expect((byUrl as Error).message).toContain("expected '-c name=value'");
  });

  it('a session SET through pool.query is refused with advice, never dropped silently', async () => {
    const cluster = oneConnection('transaction');
    try {
      for (const sql of [
        "SET statement_timeout = '100ms'",
        'RESET statement_timeout',
        "SELECT set_config('statement_timeout', '100', false)",
      ]) {
        const err = await cluster.pool.query(sql).catch((e: unknown) => e);
        expect(err, sql).toBeInstanceOf(SessionOnPoolError);
        expect((err as Error).message).toContain("'settings' option");
      }
      // In one text with the statement it is for, a SET does what it says.
      const results = (await cluster.pool.query(
        "SET lock_timeout = '3s'; SELECT current_setting('lock_timeout') AS lock",
      )) as unknown as { rows: { lock: string }[] }[];
      expect(results[1]!.rows[0]!.lock).toBe('3s');
      // A local setting inside a transaction on a client is the way for one unit of work.
      const client = await cluster.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query("SET LOCAL statement_timeout = '50ms'");
        const err = await client.query('SELECT pg_sleep(1)').catch((e: unknown) => e);
        expect((err as { code?: string }).code).toBe('57014');
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    } finally {
      await cluster.close();
    }
  });
});

describe.each(MODES)(
  'cursors, streams and read-only transactions on a client (pooling %s)',
  (pooling) => {
    let cluster: Cluster;
    // Session pooling holds one primary connection for the whole checkout: everything on the
    // client runs there, and the same invariants hold.
    const onReplica = pooling !== 'session';

    beforeAll(async () => {
      cluster = oneConnection(pooling);
      await cluster.ready();
    });

    afterAll(async () => {
      await cluster?.close();
    });

    it('a cursor read on a replica does not keep the client there: later writes work', async () => {
      const client = await cluster.pool.connect();
      try {
        const cursor = client.query(
          new Cursor<{ standby: boolean }>(
            'SELECT pg_is_in_recovery() AS standby FROM generate_series(1, 50)',
          ),
        );
        const rows = await cursor.read(10);
        expect(rows[0]!.standby).toBe(onReplica);
        await cursor.close();
        await client.query('UPDATE items SET n = n + 1 WHERE id = 1');
        await client.query('BEGIN');
        await client.query('UPDATE items SET n = n + 1 WHERE id = 1');
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    });

    it('a client released with a cursor open does not hand its portal to the next borrower', async () => {
      const client = await cluster.pool.connect();
      const cursor = client.query(new Cursor('SELECT g FROM generate_series(1, 1000) g'));
      await cursor.read(1);
      client.release();
      const where = onReplica ? cluster.replica.bind(cluster) : cluster.primary.bind(cluster);
      const next = where(() =>
        cluster.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_cursors'),
      );
      const timeout = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the next borrower hung')), 10_000).unref(),
      );
      const { rows } = await Promise.race([next, timeout]);
      expect(rows[0]!.n).toBe(0);
    });

    it('BEGIN READ ONLY + SET + COMMIT on a replica, then a write: runs on the primary, with the SET', async () => {
      // A fresh context: the writes of the tests above would keep its reads on the primary.
      await cluster.context(() => readOnlyThenWrite(cluster, onReplica));
      // And the next borrower does not inherit it.
      const { rows } = await cluster.primary(() =>
        cluster.pool.query<{ lock: string }>("SELECT current_setting('lock_timeout') AS lock"),
      );
      expect(rows[0]!.lock).toBe('0');
    });
  },
);

async function readOnlyThenWrite(cluster: Cluster, onReplica: boolean): Promise<void> {
  const client = await cluster.pool.connect();
  try {
    await client.query('BEGIN READ ONLY');
    const inside = await client.query<{ standby: boolean }>(
      'SELECT pg_is_in_recovery() AS standby',
    );
    expect(inside.rows[0]!.standby).toBe(onReplica);
    await client.query("SET lock_timeout = '7s'");
    await client.query('COMMIT');
    await client.query('UPDATE items SET n = n + 1 WHERE id = 1');
    const after = await client.query<{ standby: boolean; lock: string }>(
      "SELECT pg_is_in_recovery() AS standby, current_setting('lock_timeout') AS lock",
    );
    expect(after.rows[0]).toEqual({ standby: false, lock: '7s' });
  } finally {
    client.release();
  }
}
