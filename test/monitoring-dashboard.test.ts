import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  ConfigError,
  createCluster,
  createDashboardHandler,
  type DashboardHandler,
  type DashboardSnapshot,
  serveDashboard,
} from '../packages/core/src/index.js';

/** Reads server-sent `snapshot` events until `want` accepts one (or the time runs out). */
async function readEvents(
  url: string,
  want: (s: DashboardSnapshot) => boolean,
  timeoutMs = 15_000,
): Promise<DashboardSnapshot> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(url, { signal: abort.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buffer += value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = frame.split('\n').find((l) => l.startsWith('data: '));
        if (frame.includes('event: snapshot') && data) {
          const snapshot = JSON.parse(data.slice(6)) as DashboardSnapshot;
          if (want(snapshot)) return snapshot;
        }
        end = buffer.indexOf('\n\n');
      }
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

describe('dashboard handler (Node only)', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let server: Server;
  let dashboard: DashboardHandler;
  let base: string;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 100 },
      monitoring: { intervalMs: 200, thresholds: { slowQueryMs: 200 } },
    });
    await cluster.ready();
    dashboard = createDashboardHandler(cluster, { token: 's3cret', intervalMs: 200 });
    // Mounted under a prefix, as an app would.
    server = createServer((req, res) => {
      if (req.url?.startsWith('/ops/pgpulse')) dashboard.handle(req, res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ops/pgpulse`;
  }, 60_000);

  afterAll(async () => {
    await dashboard?.close();
    server?.closeAllConnections();
    server?.close();
    await cluster?.close();
    await sandbox?.stop();
  });

  it('refuses every path without the token, and serves with it (query or bearer header)', async () => {
    for (const path of ['/', '/api/snapshot', '/events', '/assets/uplot.iife.min.js']) {
      expect((await fetch(`${base}${path}`)).status, path).toBe(401);
      expect((await fetch(`${base}${path}?token=wrong`)).status, path).toBe(401);
    }
    const page = await fetch(`${base}/?token=s3cret`);
    expect(page.status).toBe(200);
    const html = await page.text();
    // Every script and stylesheet is local: no CDN.
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain('assets/uplot.iife.min.js');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const uplot = await fetch(`${base}/assets/uplot.iife.min.js`, {
      headers: { authorization: 'Bearer s3cret' },
    });
    expect(uplot.status).toBe(200);
    expect(await uplot.text()).toContain('uPlot');
    // A mount without its trailing slash redirects, so the page's relative links resolve.
    const bare = await fetch(`${base}?token=s3cret`, { redirect: 'manual' });
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/ops/pgpulse/?token=s3cret');
  });

  it('api/snapshot has the nodes, routing and alerts, and no secret', async () => {
    await cluster.pool.query('SELECT 1');
    const res = await fetch(`${base}/api/snapshot?token=s3cret`);
    const text = await res.text();
    const snapshot = JSON.parse(text) as DashboardSnapshot;
    expect(snapshot.nodes.map((n) => [n.name, n.role])).toEqual([
      ['primary', 'primary'],
      ['replica-1', 'replica'],
    ]);
    expect(Object.values(snapshot.routing).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(snapshot.cache).toBeUndefined(); // this cluster has no cache
    const password = new URL(sandbox.primary.url).password;
    if (password) expect(text).not.toContain(password);
    expect(text).not.toContain('s3cret');
  });

  it('streams snapshots over SSE, and a firing alert reaches the stream', async () => {
    await cluster.pool.query('SELECT pg_sleep(0.3)');
    const snapshot = await readEvents(`${base}/events?token=s3cret`, (s) =>
      s.alerts.recent.some((a) => a.kind === 'slow-query'),
    );
    expect(
      snapshot.alerts.recent.find((a) => a.kind === 'slow-query')?.value,
    ).toBeGreaterThanOrEqual(200);
  });

  it('serveDashboard listens on loopback by default and refuses another address without a token', async () => {
    const served = await serveDashboard(cluster);
    try {
      expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect((await fetch(served.url)).status).toBe(200);
    } finally {
      await served.close();
    }
    await expect(serveDashboard(cluster, { host: '0.0.0.0' })).rejects.toBeInstanceOf(ConfigError);
    await expect(serveDashboard(cluster, { host: '0.0.0.0' })).rejects.toThrow(/dashboard\.token/);
  });
  it("shows the query cache's hit ratio when the cluster has a cache", async () => {
    const cached = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      cache: { maxBytes: 1 << 20 },
    });
    const served = await serveDashboard(cached);
    try {
      await cached.ready();
      const read = () => cached.cached(() => cached.pool.query('SELECT 41 + 1 AS n'));
      // An entry is stored once its read is known to be current; then reads hit.
      await waitUntil(async () => {
        await read();
        return cached.cache.stats().hits >= 2;
      });
      const snapshot = (await (
        await fetch(`${served.url}api/snapshot`)
      ).json()) as DashboardSnapshot;
      const { hits, misses } = cached.cache.stats();
      expect(snapshot.cache).toMatchObject({ hits, misses, entries: 1 });
      expect(snapshot.cache?.hitRatio).toBeCloseTo(hits / (hits + misses));
      expect(await (await fetch(served.url)).text()).toContain('id="cache"');
    } finally {
      await served.close();
      await cached.close();
    }
  });
});
