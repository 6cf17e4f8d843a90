import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Controller, Get, Inject, Module, Param, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { type Cluster, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgpulse as expressPgpulse, sendToken } from './express.js';
import { pgpulse as fastifyPgpulse } from './fastify.js';
import { pgpulse as honoPgpulse } from './hono.js';
import { jobToken, runJob } from './jobs.js';
import { PGPULSE_CLUSTER, PgPulseModule } from './nestjs.js';
import { DEFAULT_TOKEN_HEADER } from './request.js';

// Each framework serves POST /items/:id (a write) and GET /items/:id (a read that also says
// which server answered). Replay is paused on the only replica, so a read that sees a write
// made by an earlier request can only have come from the primary: pgpulse sent it there
// because the token joined the two requests; a request without the token reads the replica.

let sandbox: SandboxCluster;
let cluster: Cluster;
let replicaPort: number;
let nextId = 1;

interface Row {
  readonly v: string | null;
  readonly port: number;
}

async function write(id: number): Promise<void> {
  await cluster.pool.query('INSERT INTO items (id, v) VALUES ($1, $2)', [id, `v${id}`]);
}

async function read(id: number): Promise<Row> {
  const { rows } = await cluster.pool.query<{ v: string | null; port: number }>(
    'SELECT (SELECT v FROM items WHERE id = $1) AS v, inet_server_port() AS port',
    [id],
  );
  return rows[0]!;
}

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
  replicaPort = sandbox.replicas[0]!.port;
  cluster = createCluster({
    primary: sandbox.primary.url,
    replicas: [sandbox.replicas[0]!.url],
    health: { intervalMs: 100 },
  });
  await cluster.ready();
  await cluster.pool.query('CREATE TABLE items (id int PRIMARY KEY, v text)');
  await sandbox.waitForReplay();
  await sandbox.pauseReplay(sandbox.replicas[0]!.name);
});

afterAll(async () => {
  await cluster?.close();
  await sandbox?.stop();
});

/** The three requests of every framework's test. */
async function scenario(base: string): Promise<void> {
  const id = nextId++;
  const posted = await fetch(`${base}/items/${id}`, { method: 'POST' });
  expect(posted.ok).toBe(true);
  const token = posted.headers.get(DEFAULT_TOKEN_HEADER);
  expect(token).toMatch(/^pgpulse:/);

  const joined = (await (
    await fetch(`${base}/items/${id}`, { headers: { [DEFAULT_TOKEN_HEADER]: token! } })
  ).json()) as Row;
  expect(joined.v).toBe(`v${id}`);
  expect(joined.port).not.toBe(replicaPort);

  // A new request without the token is a context of its own: it did not write, so it reads
  // the replica, which has not replayed the write.
  const fresh = (await (await fetch(`${base}/items/${id}`)).json()) as Row;
  expect(fresh.port).toBe(replicaPort);
  expect(fresh.v).toBeNull();

  // A malformed token reads as absent, never as a failed request.
  const bad = await fetch(`${base}/items/${id}`, {
    headers: { [DEFAULT_TOKEN_HEADER]: 'pgpulse:2:junk' },
  });
  expect(bad.status).toBe(200);
  expect(((await bad.json()) as Row).port).toBe(replicaPort);
}

describe('a pgpulse context per request, joined by the token header', () => {
  it('Express: middleware, and sendToken before the response', async () => {
    const app = express();
    app.use(expressPgpulse(cluster));
    app.post('/items/:id', async (req, res) => {
      await write(Number(req.params.id));
      await sendToken(cluster, res);
      res.json({ ok: true });
    });
    app.get('/items/:id', async (req, res) => {
      res.json(await read(Number(req.params.id)));
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    try {
      await scenario(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('Fastify: the plugin, with the token set on the response', async () => {
    const app = Fastify();
    await app.register(fastifyPgpulse, { cluster });
    app.post<{ Params: { id: string } }>('/items/:id', async (req) => {
      await write(Number(req.params.id));
      return { ok: true };
    });
    app.get<{ Params: { id: string } }>('/items/:id', async (req) => read(Number(req.params.id)));
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      await scenario(base);
    } finally {
      await app.close();
    }
  });

  it('Hono: the middleware, with the token set on the response', async () => {
    const app = new Hono();
    app.use(honoPgpulse(cluster));
    app.post('/items/:id', async (c) => {
      await write(Number(c.req.param('id')));
      return c.json({ ok: true });
    });
    app.get('/items/:id', async (c) => c.json(await read(Number(c.req.param('id')))));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    try {
      await scenario(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('NestJS: PgPulseModule.forRoot, the cluster injectable, the token set on the response', async () => {
    @Controller('items')
    class ItemsController {
      constructor(@Inject(PGPULSE_CLUSTER) readonly injected: Cluster) {}

      @Post(':id')
      async create(@Param('id') id: string) {
        await write(Number(id));
        return { ok: this.injected === cluster };
      }

      @Get(':id')
      get(@Param('id') id: string) {
        return read(Number(id));
      }
    }
    // The test build emits no decorator metadata: the constructor's dependency comes from @Inject.
    @Module({ imports: [PgPulseModule.forRoot({ cluster })], controllers: [ItemsController] })
    class AppModule {}
    const app = await NestFactory.create(AppModule, { logger: false });
    await app.listen(0, '127.0.0.1');
    try {
      const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
      await scenario(base);
      const posted = await fetch(`${base}/items/${nextId++}`, { method: 'POST' });
      expect(await posted.json()).toEqual({ ok: true });
    } finally {
      await app.close();
    }
  });
});

describe('a background job', () => {
  it('reads what the request that queued it wrote, through the token in its payload', async () => {
    const id = nextId++;
    const payload = await cluster.context(async () => {
      await write(id);
      return { id, pgpulseToken: await jobToken(cluster) };
    });
    expect(payload.pgpulseToken).toMatch(/^pgpulse:/);
    const seen = await runJob(cluster, payload.pgpulseToken, () => read(payload.id));
    expect(seen.v).toBe(`v${id}`);
    // A job queued without the token is a fresh context: the replica, without the write.
    const unjoined = await runJob(cluster, undefined, () => read(payload.id));
    expect(unjoined.port).toBe(replicaPort);
    expect(unjoined.v).toBeNull();
  });
});
