import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { nextEvent, waitUntil } from '@pgpulse/sandbox/testing';
import Cursor from 'pg-cursor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

// #22 item 5: the pinned client forwards 'error' and 'end' like a pg.Client, so an ORM sees its
// own error when the server ends a session; streams and cursors move stats()'s counters.

let sandbox: SandboxCluster;
let cluster: Cluster | undefined;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
  await sandbox.query('primary', 'CREATE TABLE IF NOT EXISTS pin_events (id int)');
  await sandbox.waitForReplay();
}, 60_000);

afterAll(async () => {
  await cluster?.close();
  await sandbox?.stop();
});

describe('pinned client events (#22 item 5)', () => {
  it("a checked-out client gets 'error' and 'end' when its pinned session is terminated", async () => {
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
    });
    const client = await cluster.pool.connect();
    const events: string[] = [];
    client.on('error', (err: Error & { code?: string }) => events.push(`error ${err.code ?? ''}`));
    client.on('end', () => events.push('end'));
    await client.query('BEGIN');
    const { rows } = await client.query('SELECT pg_backend_pid() AS pid');
    const ended = nextEvent(client, 'end');
    await sandbox.query('primary', 'SELECT pg_terminate_backend($1)', [rows[0].pid]);
    await ended;
    expect(events).toContain('end');
    expect(events.some((e) => e.startsWith('error'))).toBe(true);
    client.release(new Error('session gone'));
    // No listener: nothing is thrown at the process (pg would crash it; pgpulse does not).
    const quiet = await cluster.pool.connect();
    await quiet.query('BEGIN');
    const other = await quiet.query('SELECT pg_backend_pid() AS pid');
    // An 'end' listener is not an 'error' listener: it only shows the termination arrived.
    const quietEnded = nextEvent(quiet, 'end');
    await sandbox.query('primary', 'SELECT pg_terminate_backend($1)', [other.rows[0].pid]);
    await quietEnded;
    quiet.release(true);
    await cluster.close();
    cluster = undefined;
  }, 30_000);

  it('cursors move the per-node counters in stats()', async () => {
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      consistency: { level: 'eventual' },
    });
    await cluster.ready();
    const sum = (key: 'queries' | 'reads' | 'writes') =>
      cluster!.stats().nodes.reduce((n, node) => n + node.counters[key], 0);
    const before = { queries: sum('queries'), reads: sum('reads') };
    const client = await cluster.pool.connect();
    const cursor = client.query(new Cursor('SELECT generate_series(1, 100) AS n'));
    const inFlight = () => cluster!.stats().nodes.reduce((n, node) => n + node.inFlight, 0);
    const firstRows = await cursor.read(10);
    expect(firstRows).toHaveLength(10);
    expect(inFlight()).toBe(1);
    await cursor.read(1000);
    await cursor.close();
    await waitUntil(() => inFlight() === 0, {
      timeoutMs: 5_000,
      message: 'a statement stayed in flight',
    });
    expect(inFlight()).toBe(0);
    client.release();
    expect(sum('queries') - before.queries).toBe(1);
    expect(sum('reads') - before.reads).toBe(1);
  }, 30_000);
});
