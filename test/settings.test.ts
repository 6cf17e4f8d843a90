import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { objectForm } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  ConfigError,
  createCluster,
  createPoolFromPgOptions,
  fromPgPoolOptions,
} from '../packages/core/src/index.js';

let sandbox: SandboxCluster;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
}, 60_000);

afterAll(async () => {
  await sandbox?.stop();
});

async function cancelled(run: () => Promise<unknown>): Promise<string | undefined> {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  return (err as { code?: string } | undefined)?.code;
}

describe('per-connection settings: object-form options, pg.Pool fields, session reset', () => {
  it('options in the object form (node and cluster-wide) cancel a long query with 57014', async () => {
    const cluster = createCluster({
      primary: { ...objectForm(sandbox.primary.url), options: '-c statement_timeout=100' },
      replicas: [sandbox.replicas[0]!.url],
      options: '-c statement_timeout=150 -c lock_timeout=1s',
    });
    try {
      expect(
        await cancelled(() => cluster.primary(() => cluster.pool.query('SELECT pg_sleep(3)'))),
      ).toBe('57014');
      expect(
        await cancelled(() => cluster.replica(() => cluster.pool.query('SELECT pg_sleep(3)'))),
      ).toBe('57014');
      const show = (run: Cluster['primary']) =>
        run(() =>
          cluster.pool.query<{ st: string; lt: string }>(
            "SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt",
          ),
        ).then((r) => r.rows[0]);
      // The node's own options win over the cluster-wide ones, which still reach every node.
      expect(await show(cluster.primary.bind(cluster))).toEqual({ st: '100ms', lt: '1s' });
      expect(await show(cluster.replica.bind(cluster))).toEqual({ st: '150ms', lt: '1s' });
    } finally {
      await cluster.close();
    }
  }, 60_000);

  it('URL parameters statement_timeout and lock_timeout are sent at connect, as pg sends them', async () => {
    const withParams = (url: string, params: string) =>
      `${url}${url.includes('?') ? '&' : '?'}${params}`;
    const cluster = createCluster({
      primary: withParams(sandbox.primary.url, 'statement_timeout=100&lock_timeout=2s'),
      replicas: [withParams(sandbox.replicas[0]!.url, 'statement_timeout=150')],
    });
    try {
      expect(
        await cancelled(() => cluster.primary(() => cluster.pool.query('SELECT pg_sleep(3)'))),
      ).toBe('57014');
      const shown = await cluster.primary(() =>
        cluster.pool.query<{ st: string; lt: string }>(
          "SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt",
        ),
      );
      expect(shown.rows[0]).toEqual({ st: '100ms', lt: '2s' });
      const replica = await cluster.replica(() =>
        cluster.pool.query<{ st: string }>("SELECT current_setting('statement_timeout') AS st"),
      );
      expect(replica.rows[0]!.st).toBe('150ms');
    } finally {
      await cluster.close();
    }
  }, 60_000);

  it('a node’s application_name (URL or settings) is the one its connections show, over the cluster’s', async () => {
    const sep = sandbox.replicas[0]!.url.includes('?') ? '&' : '?';
    const cluster = createCluster({
      primary: {
        ...objectForm(sandbox.primary.url),
        settings: { application_name: 'orders-writer' },
      },
      replicas: [`${sandbox.replicas[0]!.url}${sep}application_name=orders-reader`],
      applicationName: 'orders',
    });
    try {
      const name = (run: Cluster['primary']) =>
        run(() =>
          cluster.pool.query<{ app: string }>("SELECT current_setting('application_name') AS app"),
        ).then((r) => r.rows[0]!.app);
      expect(await name(cluster.primary.bind(cluster))).toBe('orders-writer');
      expect(await name(cluster.replica.bind(cluster))).toBe('orders-reader');
    } finally {
      await cluster.close();
    }
  }, 60_000);

  it('pg.Pool fields statement_timeout and options are sent as settings (57014), not refused', async () => {
    const pool = createPoolFromPgOptions({
      connectionString: sandbox.primary.url,
      statement_timeout: 100,
      options: '-c lock_timeout=2s',
    });
    try {
      expect(await cancelled(() => pool.query('SELECT pg_sleep(3)'))).toBe('57014');
      const { rows } = await pool.query<{ lt: string }>(
        "SELECT current_setting('lock_timeout') AS lt",
      );
      expect(rows[0]!.lt).toBe('2s');
    } finally {
      await pool.end();
    }
    expect(() => fromPgPoolOptions({ statement_timeout: '5s' })).toThrow(ConfigError);
    expect(() => fromPgPoolOptions({ options: '-x 1' })).toThrow(/options/);
  }, 60_000);

  it('a bad options string names the field', () => {
    let err: unknown;
    try {
      createCluster({
        primary: { ...objectForm(sandbox.primary.url), options: 'statement_timeout=1' },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues[0]!.field).toBe('primary.options');
  });

  it('DISCARD ALL on release (resetOnRelease: all) keeps the start-up settings as the session default', async () => {
    const cluster = createCluster({
      primary: sandbox.primary.url,
      settings: { statement_timeout: 200 },
      pool: { maxSize: 1, resetOnRelease: 'all' },
    });
    try {
      const pid = async () => {
        const client = await cluster.pool.connect();
        try {
          // A change pgpulse cannot see in the SQL (inside a DO block) that DISCARD ALL undoes;
          // set_config(..., false) in a transaction outlives its COMMIT.
          await client.query('BEGIN');
          await client.query(
            "DO $$ BEGIN PERFORM set_config('statement_timeout', '0', false); END $$",
          );
          const { rows } = await client.query<{ pid: number; st: string }>(
            "SELECT pg_backend_pid() AS pid, current_setting('statement_timeout') AS st",
          );
          await client.query('COMMIT');
          expect(rows[0]!.st).toBe('0');
          return rows[0]!.pid;
        } finally {
          client.release();
        }
      };
      const first = await pid();
      const client = await cluster.pool.connect();
      try {
        const { rows } = await client.query<{ pid: number; st: string }>(
          "SELECT pg_backend_pid() AS pid, current_setting('statement_timeout') AS st",
        );
        expect(rows[0]).toEqual({ pid: first, st: '200ms' });
        expect(await cancelled(() => client.query('SELECT pg_sleep(3)'))).toBe('57014');
      } finally {
        client.release();
      }
    } finally {
      await cluster.close();
    }
  }, 60_000);
});
