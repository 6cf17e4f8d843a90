// PgBouncer in transaction mode (issue 22 item 3): a node declared `pooler: 'transaction'`
// sends no automatic prepared statements, and session state outside a transaction is refused
// with SessionBehindPoolerError. Runs Debian's pgbouncer (/usr/sbin/pgbouncer, which .ci/run
// installs); fails, never skips, when it is missing.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  createCluster,
  SessionBehindPoolerError,
} from '../../packages/core/src/index.js';

const PGBOUNCER = '/usr/sbin/pgbouncer';

let sandbox: SandboxCluster;
let bouncer: ChildProcess | undefined;
let dir: string | undefined;
let port: number;
let user: string;
let output = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

function accepts(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(p, '127.0.0.1');
  });
}

beforeAll(async () => {
  if (!existsSync(PGBOUNCER)) {
    throw new Error(
      `${PGBOUNCER} is missing: apt-get install -y pgbouncer (Debian's package; .ci/run installs it)`,
    );
  }
  sandbox = await startCluster({ replicas: 1 });
  const url = new URL(sandbox.primary.url);
  user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  await sandbox.query('primary', 'CREATE TABLE items (id int PRIMARY KEY, n int)');
  port = await freePort();
  dir = await mkdtemp(join(tmpdir(), 'pgpulse-pgbouncer-'));
  await chmod(dir, 0o755);
  const ini = join(dir, 'pgbouncer.ini');
  const users = join(dir, 'users.txt');
  // The server side authenticates with the sandbox's password; clients reach the bouncer by trust.
  await writeFile(
    ini,
    [
      '[databases]',
      `app = host=${url.hostname} port=${url.port} dbname=${url.pathname.slice(1) || 'postgres'} user=${user} password=${password}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      "unix_socket_dir = ''",
      'auth_type = trust',
      `auth_file = ${users}`,
      'pool_mode = transaction',
      // Fewer server connections than clients: statements of one client move between them.
      'default_pool_size = 2',
      'max_client_conn = 100',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  await writeFile(users, `"${user}" ""\n`, { mode: 0o644 });
  // PgBouncer refuses to run as root; -u drops to an unprivileged user.
  const args = process.getuid?.() === 0 ? ['-u', 'nobody', ini] : [ini];
  bouncer = spawn(PGBOUNCER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  bouncer.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  bouncer.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<never>((_, reject) =>
    bouncer?.once('exit', (code) => reject(new Error(`pgbouncer exited (${code}): ${output}`))),
  );
  exited.catch(() => {});
  await Promise.race([waitUntil(() => accepts(port), { timeoutMs: 30_000 }), exited]);
});

afterAll(async () => {
  if (bouncer && bouncer.exitCode === null) {
    const gone = new Promise((resolve) => bouncer?.once('exit', resolve));
    bouncer.kill('SIGTERM');
    await gone;
  }
  if (dir) await rm(dir, { recursive: true, force: true });
  await sandbox?.stop();
});

function throughBouncer(extra: Record<string, unknown> = {}): Cluster {
  return createCluster({
    primary: { host: '127.0.0.1', port, database: 'app', user, name: 'bouncer' },
    pooler: 'transaction',
    pool: { maxSize: 6 },
    ...extra,
  });
}

describe("pooler: 'transaction' through PgBouncer (pool_mode = transaction)", () => {
  it('writes and reads go through the bouncer', async () => {
    const cluster = throughBouncer();
    try {
      await cluster.pool.query('INSERT INTO items VALUES ($1, $2)', [1, 10]);
      const { rows } = await cluster.pool.query<{ n: number }>(
        'SELECT n FROM items WHERE id = $1',
        [1],
      );
      expect(rows).toEqual([{ n: 10 }]);
    } finally {
      await cluster.close();
    }
  });

  it('session state outside a transaction is refused with SessionBehindPoolerError', async () => {
    const cluster = throughBouncer();
    try {
      for (const sql of [
        "SET statement_timeout = '1s'",
        "SELECT set_config('statement_timeout', '1s', false)",
        'LISTEN pgpulse_bouncer',
        'SELECT pg_advisory_lock(77)',
        'CREATE TEMP TABLE t_bouncer (x int)',
        'PREPARE p_bouncer AS SELECT 1',
        "SET work_mem = '8MB'; SELECT 1",
      ]) {
        const err = await cluster.pool.query(sql).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, sql).toBeInstanceOf(SessionBehindPoolerError);
        expect((err as SessionBehindPoolerError).code).toBe('PGPULSE_SESSION_BEHIND_POOLER');
        expect((err as SessionBehindPoolerError).retriable).toBe(false);
        expect((err as Error).message).toMatch(/SET LOCAL/);
      }
      // A client from pool.connect() outside a transaction: the same.
      const client = await cluster.pool.connect();
      try {
        await expect(client.query('SELECT pg_advisory_lock(78)')).rejects.toBeInstanceOf(
          SessionBehindPoolerError,
        );
        await expect(client.query('LISTEN pgpulse_bouncer')).rejects.toBeInstanceOf(
          SessionBehindPoolerError,
        );
        // The client still works.
        expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        client.release();
      }
      // Nothing was sent: no session holds the lock.
      const rows = await sandbox.query<{ n: string }>(
        'primary',
        "SELECT count(*)::text AS n FROM pg_locks WHERE locktype = 'advisory'",
      );
      expect(rows[0]?.n).toBe('0');
    } finally {
      await cluster.close();
    }
  });

  it('the same statements inside a transaction run as usual', async () => {
    const cluster = throughBouncer();
    try {
      const client = await cluster.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query("SET statement_timeout = '1234ms'");
        const { rows } = await client.query<{ t: string }>(
          "SELECT current_setting('statement_timeout') AS t",
        );
        expect(rows[0]?.t).toBe('1234ms');
        await client.query('SELECT pg_advisory_lock(79)');
        await client.query('SELECT pg_advisory_unlock(79)');
        await client.query('LISTEN pgpulse_bouncer');
        await client.query('UNLISTEN pgpulse_bouncer');
        await client.query('CREATE TEMP TABLE t_in_tx (x int) ON COMMIT DROP');
        await client.query('INSERT INTO t_in_tx VALUES ($1)', [1]);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      // A whole transaction in one text through pool.query().
      const result = await cluster.pool.query(
        "BEGIN; SET LOCAL work_mem = '8MB'; SELECT pg_advisory_xact_lock(80); COMMIT",
      );
      expect(result).toBeDefined();
    } finally {
      await cluster.close();
    }
  });

  it("statements the application named (pg's name field) give 0 errors: sent unnamed behind the bouncer", async () => {
    // PgBouncer before 1.21 does not follow protocol-level prepared statements: pg parses a
    // named statement on one server connection and later sends only Bind, which another
    // server connection does not know (26000) or already has under that name (42P05).
    const cluster = throughBouncer();
    try {
      await cluster.pool.query('INSERT INTO items VALUES (-5000, 0) ON CONFLICT (id) DO NOTHING');
      let errors = 0;
      const firstErrors: unknown[] = [];
      const worker = async (w: number) => {
        for (let i = 0; i < 30; i++) {
          try {
            const { rows } = await cluster.pool.query<{ id: number; w: number }>({
              name: 'pgbouncer_named_point',
              text: 'SELECT id, $2::int AS w FROM items WHERE id = $1',
              values: [-5000, w],
            });
            if (rows[0]?.id !== -5000 || rows[0]?.w !== w) throw new Error(JSON.stringify(rows));
            // The same name in a transaction on a checked-out client.
            const client = await cluster.pool.connect();
            try {
              await client.query('BEGIN');
              await client.query({
                name: 'pgbouncer_named_update',
                text: 'UPDATE items SET n = n + $2 WHERE id = $1',
                values: [-5000, 1],
              });
              await client.query('COMMIT');
            } finally {
              client.release();
            }
          } catch (err) {
            errors++;
            if (firstErrors.length < 3) firstErrors.push(err);
          }
        }
      };
      await Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
      expect(firstErrors).toEqual([]);
      expect(errors).toBe(0);
      const rows = await sandbox.query<{ n: number }>(
        'primary',
        'SELECT n FROM items WHERE id = -5000',
      );
      expect(rows[0]?.n).toBe(180);
    } finally {
      await cluster.close();
    }
  });

  it('repeated parameterised statements give 0 errors: no automatic prepared statements', async () => {
    // Turned on, automatic prepared statements would be parsed on one server connection and
    // executed by name on another (PgBouncer 1.18: 26000 / 42P05).
    const cluster = throughBouncer({ preparedStatements: { enabled: true } });
    try {
      let errors = 0;
      const firstErrors: unknown[] = [];
      const worker = async (w: number) => {
        for (let i = 0; i < 40; i++) {
          try {
            const id = 1000 + w * 100 + i;
            await cluster.pool.query('INSERT INTO items VALUES ($1, $2)', [id, i]);
            await cluster.pool.query('UPDATE items SET n = n + $2 WHERE id = $1', [id, 1]);
            const { rows } = await cluster.pool.query<{ n: number }>(
              'SELECT n FROM items WHERE id = $1',
              [id],
            );
            if (rows[0]?.n !== i + 1) throw new Error(`row ${id}: ${JSON.stringify(rows)}`);
          } catch (err) {
            errors++;
            if (firstErrors.length < 3) firstErrors.push(err);
          }
        }
      };
      await Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
      expect(firstErrors).toEqual([]);
      expect(errors).toBe(0);
      expect(cluster.stats().preparedStatements.prepared).toBe(0);
      const rows = await sandbox.query<{ n: string }>(
        'primary',
        'SELECT count(*)::text AS n FROM items WHERE id >= 1000',
      );
      expect(rows[0]?.n).toBe('240');
    } finally {
      await cluster.close();
    }
  });
});
