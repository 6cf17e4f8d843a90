// A write is never sent on a connection whose server already hung up. When a backend dies
// (its server crashed, or it was terminated), its goodbye waits unread in the socket until the
// next turn of the event loop. A write handed that idle connection first would fail after it
// was sent, and pgpulse never resends a write (it may have run), so the write must go to a
// live connection instead. To make the race certain, the backend is terminated by a child
// process while this process is blocked (execFileSync): no turn of the loop can read the
// goodbye before the write is placed.
import { execFileSync } from 'node:child_process';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { closeAfterEach } from '@pgpulse/sandbox/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

let sandbox: SandboxCluster | undefined;
let cluster: Cluster | undefined;
const track = closeAfterEach(afterEach);

/** Terminates a backend from another process, blocking this one until it is gone. */
function terminateWhileBlocked(url: string, pid: number): void {
  const script = `
    const pg = require('pg');
    const c = new pg.Client({ connectionString: process.argv[1] });
    (async () => {
      await c.connect();
      await c.query('SELECT pg_terminate_backend($1)', [Number(process.argv[2])]);
      for (let i = 0; i < 500; i++) {
        const r = await c.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [Number(process.argv[2])]);
        if (r.rows[0].n === 0) break;
        await new Promise((s) => setTimeout(s, 10));
      }
      await c.end();
    })().catch((e) => { console.error(e); process.exit(1); });`;
  execFileSync(process.execPath, ['-e', script, url, String(pid)], { stdio: 'inherit' });
}

describe('a write on an idle connection whose backend just died', () => {
  it('runs on a new connection: it neither fails nor is lost', async () => {
    sandbox = track(await startCluster({ replicas: 0 }));
    await sandbox.query('primary', 'CREATE TABLE hung_up (id int PRIMARY KEY)');
    cluster = track(
      createCluster({
        primary: sandbox.primary.url,
        applicationName: 'hung-up',
        pool: { minSize: 1, maxSize: 1, overflow: 0, prePing: false },
      }),
    );
    await cluster.ready();
    // First the connection opened ahead by ready(), never used yet.
    const warm = await sandbox.query<{ pid: number }>(
      'primary',
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'hung-up'",
    );
    expect(warm).toHaveLength(1);
    terminateWhileBlocked(sandbox.primary.url, warm[0]!.pid);
    await cluster.pool.query('INSERT INTO hung_up VALUES (1)');
    for (let round = 1; round <= 3; round++) {
      const { rows } = await cluster.pool.query<{ pid: number }>(
        'INSERT INTO hung_up VALUES ($1) RETURNING pg_backend_pid() AS pid',
        [round * 10],
      );
      // The only connection is idle now; its backend dies while this process cannot read.
      terminateWhileBlocked(sandbox.primary.url, rows[0]!.pid);
      await cluster.pool.query('INSERT INTO hung_up VALUES ($1)', [round * 10 + 1]);
    }
    const stored = await sandbox.query<{ id: number }>(
      'primary',
      'SELECT id FROM hung_up ORDER BY id',
    );
    expect(stored.map((r) => r.id)).toEqual([1, 10, 11, 20, 21, 30, 31]);
  });
});
