import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

/** Polls `check` until it is true or the deadline passes (no fixed sleeps: the box is shared). */
const until = (check: () => Promise<boolean> | boolean, timeoutMs = 20_000) =>
  waitUntil(check, { timeoutMs, intervalMs: 25 });

const WRITER = (name: string) => `
  CREATE FUNCTION ${name}() RETURNS int LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO refusal_log (fn) VALUES ('${name}'); RETURN 1; END $$`;

describe('statements a replica refuses (issue 19)', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  const refusals: { node: string; query: string }[] = [];
  const refused = () => cluster.stats().routing['replica-refused'] ?? 0;
  const logged = async (fn: string) =>
    Number(
      (
        await sandbox.query<{ n: string }>(
          'primary',
          `SELECT count(*) AS n FROM refusal_log WHERE fn = '${fn}'`,
        )
      )[0]!.n,
    );

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query(
      'primary',
      `CREATE TABLE refusal_log (id serial PRIMARY KEY, fn text);
       ${WRITER('early_write')};
       CREATE VIEW early_view AS SELECT early_write() AS x;
       CREATE VIEW early_view_on_view AS SELECT x FROM early_view;`,
    );
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      routing: { catalogRefreshMs: 200 },
      health: { intervalMs: 100 },
    });
    cluster.on('replica-refused', (event) => refusals.push(event));
    await cluster.ready();
  }, 60_000);

  afterAll(async () => {
    await cluster?.close();
    await sandbox?.stop();
  });

  it('a writing function created after start by another client: 0 errors, one refusal, then the primary', async () => {
    // No periodic catalog check here: on a slow machine it could find the function before the
    // first call does, and this test is about the refusal path.
    const own = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      routing: { catalogRefreshMs: 0 },
      health: { intervalMs: 100 },
    });
    const seen: { node: string; query: string }[] = [];
    own.on('replica-refused', (event) => seen.push(event));
    try {
      await own.ready();
      await sandbox.query('primary', WRITER('late_write'));
      await sandbox.waitForReplay();
      for (let i = 0; i < 20; i++) await own.pool.query('SELECT late_write()');
      expect(await logged('late_write')).toBe(20); // each call ran once, on the primary
      // The second call went straight to the primary.
      expect(own.stats().routing['replica-refused'] ?? 0).toBe(1);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ node: 'replica-1' });
      expect(seen[0]!.query).toContain('late_write');
      // Learned for the same shape too, and then the catalog (refreshed after the refusal) knows.
      await until(() => own.explainRoute('SELECT late_write()').reason === 'catalog-volatile');
    } finally {
      await own.close();
    }
  });

  it('a view over a writing function: known at start goes to the primary, created later is learned', async () => {
    for (const view of ['early_view', 'early_view_on_view']) {
      expect(cluster.explainRoute(`SELECT x FROM ${view}`)).toMatchObject({
        target: 'primary',
        reason: 'catalog-volatile',
      });
    }
    await sandbox.query('primary', 'CREATE VIEW late_view AS SELECT late_write() AS x');
    await sandbox.waitForReplay();
    const before = refused();
    for (let i = 0; i < 10; i++) await cluster.pool.query('SELECT x FROM late_view');
    expect(refused() - before).toBeLessThanOrEqual(1);
    await until(
      () => cluster.explainRoute('SELECT x FROM late_view').reason === 'catalog-volatile',
    );
    // A plain table read is not affected.
    expect(cluster.explainRoute('SELECT * FROM refusal_log').target).toBe('replica');
  });

  it('a function replaced from read-only to writing and back', async () => {
    await sandbox.query(
      'primary',
      "CREATE FUNCTION flip() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1'",
    );
    await sandbox.waitForReplay();
    await until(() => cluster.explainRoute('SELECT flip()').target === 'replica');
    const standby = async () =>
      (await cluster.pool.query<{ r: boolean }>('SELECT flip(), pg_is_in_recovery() AS r')).rows[0]!
        .r;
    // explainRoute() judges the statement only; a replica a loaded machine's probe just missed
    // is out for a round, and the read is then rightly served by the primary.
    await until(async () => await standby());

    await sandbox.query(
      'primary',
      `CREATE OR REPLACE FUNCTION flip() RETURNS int LANGUAGE plpgsql VOLATILE AS $$
       BEGIN INSERT INTO refusal_log (fn) VALUES ('flip'); RETURN 2; END $$`,
    );
    await sandbox.waitForReplay();
    for (let i = 0; i < 5; i++) expect(await standby()).toBe(false); // on the primary, no error
    expect(await logged('flip')).toBe(5);

    await sandbox.query(
      'primary',
      "CREATE OR REPLACE FUNCTION flip() RETURNS int LANGUAGE sql STABLE AS 'SELECT 3'",
    );
    await sandbox.waitForReplay();
    // The periodic check sees the catalog change and lets the replicas serve it again.
    await until(async () => await standby());
  });

  it('refreshes the catalog at once after DDL through pgpulse', async () => {
    await cluster.pool.query(WRITER('ddl_write'));
    // Before any reload could finish, the policy already distrusts what it knew.
    expect(cluster.explainRoute('SELECT ddl_write()').target).toBe('primary');
    await sandbox.waitForReplay();
    await until(() => cluster.explainRoute('SELECT ddl_write()').reason === 'catalog-volatile');
    const before = refused();
    await cluster.pool.query('SELECT ddl_write()');
    expect(refused() - before).toBe(0);
    await cluster.pool.query('CREATE VIEW ddl_view AS SELECT ddl_write() AS x');
    await until(() => cluster.explainRoute('SELECT x FROM ddl_view').reason === 'catalog-volatile');
  });

  it('records a refused read as a write for read-your-writes', async () => {
    await sandbox.query('primary', WRITER('ryw_write'));
    await sandbox.waitForReplay();
    await sandbox.pauseReplay('replica1');
    try {
      await cluster.context(async () => {
        await cluster.pool.query('SELECT ryw_write()');
        // Its own write is not on the paused replica: the next read goes to the primary.
        const { rows } = await cluster.pool.query<{ n: string; r: boolean }>(
          "SELECT count(*) AS n, pg_is_in_recovery() AS r FROM refusal_log WHERE fn = 'ryw_write'",
        );
        expect(rows[0]).toEqual({ n: '1', r: false });
      });
    } finally {
      await sandbox.resumeReplay('replica1');
    }
  });

  it('inside a transaction the statement is already on the primary: no retry needed', async () => {
    const client = await cluster.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT late_write()');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  });
});
