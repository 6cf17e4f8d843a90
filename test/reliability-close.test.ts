import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterClosedError, createCluster } from '../packages/core/src/index.js';

let sandbox: SandboxCluster;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
}, 60_000);

afterAll(async () => {
  await sandbox?.stop();
});

describe('after close() (#11 item 1, in part)', () => {
  it('ready(), acquire(), analyzeQuery() and pool.query() reject with ClusterClosedError', async () => {
    const c = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
    });
    await c.ready();
    await c.close();
    await expect(c.ready()).rejects.toBeInstanceOf(ClusterClosedError);
    await expect(c.acquire()).rejects.toBeInstanceOf(ClusterClosedError);
    await expect(c.analyzeQuery('SELECT 1')).rejects.toBeInstanceOf(ClusterClosedError);
    await expect(c.pool.query('SELECT 1')).rejects.toBeInstanceOf(ClusterClosedError);
  }, 30_000);
});

describe('close({ timeoutMs }) with a checked-out client (#11 item 1)', () => {
  function cluster() {
    return createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
    });
  }

  it('refuses new work at once, lets the held client go on until the deadline, then cuts it and rolls back', async () => {
    const c = cluster();
    await c.pool.query('CREATE TABLE IF NOT EXISTS close_probe (id int)');
    await c.pool.query('TRUNCATE close_probe');
    const held = await c.pool.connect();
    await held.query('BEGIN');
    await held.query('INSERT INTO close_probe VALUES (1)');

    const t0 = performance.now();
    let resolvedAt: number | undefined;
    const closing = c.close({ timeoutMs: 800 }).then(() => {
      resolvedAt = performance.now() - t0;
    });
    // New work: refused at once.
    await expect(c.pool.query('SELECT 1')).rejects.toBeInstanceOf(ClusterClosedError);
    await expect(c.pool.connect()).rejects.toBeInstanceOf(ClusterClosedError);
    await expect(c.ready()).rejects.toBeInstanceOf(ClusterClosedError);
    await expect(c.acquire()).rejects.toBeInstanceOf(ClusterClosedError);
    // The held client may go on before the deadline.
    const before = await held.query('SELECT count(*)::int AS n FROM close_probe');
    expect(before.rows[0].n).toBe(1);
    expect(resolvedAt).toBeUndefined();

    await closing;
    console.log(
      `close({ timeoutMs: 800 }) with a held client resolved after ${resolvedAt?.toFixed(0)} ms`,
    );
    expect(resolvedAt).toBeGreaterThanOrEqual(700);
    // After the deadline: its next statement fails, typed; release still works.
    await expect(held.query('SELECT 1')).rejects.toBeInstanceOf(ClusterClosedError);
    held.release();
    // The server rolled back what the client had open.
    const rows = await sandbox.query<{ n: number }>(
      'primary',
      'SELECT count(*)::int AS n FROM close_probe',
    );
    expect(rows[0]!.n).toBe(0);
  }, 30_000);

  it('a statement in flight at the deadline fails with ClusterClosedError and close() does not wait for it', async () => {
    const c = cluster();
    const held = await c.pool.connect();
    await held.query('BEGIN');
    const sleeping = held.query('SELECT pg_sleep(30)');
    const caught = sleeping.then(
      () => undefined,
      (err: unknown) => err,
    );
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    await c.close({ timeoutMs: 300 });
    const ms = performance.now() - t0;
    console.log(
      `close({ timeoutMs: 300 }) with pg_sleep(30) in flight resolved after ${ms.toFixed(0)} ms`,
    );
    // Well short of the 30 s statement: close() did not wait for it.
    expect(ms).toBeLessThan(15_000);
    expect(await caught).toBeInstanceOf(ClusterClosedError);
    held.release();
  }, 30_000);

  it('resolves as soon as the held client is released, before the deadline', async () => {
    const c = cluster();
    const held = await c.pool.connect();
    await held.query('SELECT 1');
    let resolved = false;
    const closing = c.close({ timeoutMs: 60_000 }).then(() => {
      resolved = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(resolved).toBe(false);
    const r = await held.query('SELECT 2 AS two');
    expect(r.rows[0].two).toBe(2);
    held.release();
    await closing; // the test's own 20 s timeout is far below the 60 s deadline
    expect(resolved).toBe(true);
  }, 20_000);

  it('close() refuses a bad timeout with a ConfigError naming the field', () => {
    const c = cluster();
    expect(() => c.close({ timeoutMs: -1 })).toThrow(/close\.timeoutMs/);
    return c.close({ timeoutMs: 0 });
  });
});
