// cluster.middleware() under a real HTTP server: each request is its own context.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

describe('cluster.middleware()', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query('primary', 'CREATE TABLE notes (id serial PRIMARY KEY, body text)');
    await sandbox.waitForReplay();
    await sandbox.setApplyDelay('replica1', 2000);
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: [sandbox.replicas[0]!.url],
      health: { intervalMs: 100 },
    });
    await cluster.ready();
    const middleware = cluster.middleware({ header: 'x-pgpulse-token' });
    // A two-step chain as Express runs it: the middleware, then the route handler.
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      middleware(req, res, () => void route(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await cluster?.close();
    await sandbox?.stop();
  });

  async function route(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', base);
    let body: unknown;
    if (url.pathname === '/write-then-read') {
      const { rows } = await cluster.pool.query<{ id: number }>(
        'INSERT INTO notes (body) VALUES ($1) RETURNING id',
        ['n'],
      );
      const read = await cluster.pool.query('SELECT id FROM notes WHERE id = $1', [rows[0]!.id]);
      body = { found: read.rowCount, token: await cluster.consistencyToken() };
    } else {
      const id = Number(url.searchParams.get('id'));
      const read = await cluster.pool.query<{ port: number }>(
        'SELECT inet_server_port() AS port, (SELECT count(*) FROM notes WHERE id = $1)::int AS found',
        [id],
      );
      body = read.rows[0];
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  }

  it('a request reads its own write while another request keeps reading from the replica', async () => {
    const wrote = (await (await fetch(`${base}/write-then-read`)).json()) as {
      found: number;
      token: string;
    };
    expect(wrote.found).toBe(1);
    const other = (await (await fetch(`${base}/read?id=0`)).json()) as { port: number };
    expect(other.port).toBe(sandbox.replicas[0]!.port);
  });

  it('a token in the header carries the write to the next request; a bad one is ignored', async () => {
    const wrote = (await (await fetch(`${base}/write-then-read`)).json()) as { token: string };
    const id = Number(
      (await sandbox.query<{ id: number }>('primary', 'SELECT max(id) AS id FROM notes'))[0]!.id,
    );
    const carried = (await (
      await fetch(`${base}/read?id=${id}`, { headers: { 'x-pgpulse-token': wrote.token } })
    ).json()) as { found: number; port: number };
    expect(carried.found).toBe(1);
    expect(carried.port).toBe(sandbox.primary.port); // the replica is 2 s behind
    const bad = await fetch(`${base}/read?id=0`, { headers: { 'x-pgpulse-token': 'not-a-token' } });
    expect(bad.status).toBe(200);
  });
});
