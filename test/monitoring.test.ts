import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep, waitUntil } from '@pgpulse/sandbox/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Alert,
  type Cluster,
  ConfigError,
  createCluster,
  parseConfig,
} from '../packages/core/src/index.js';

const HEALTH_MS = 100;
const INTERVAL = 250;
const LAG_MS = 800;
const TOKEN = 'Bearer webhook-secret-token';

const until = <T>(what: string, fn: () => T, timeoutMs = 20_000) =>
  waitUntil(fn, { timeoutMs, intervalMs: 20, message: `no ${what}` });

/** A local webhook endpoint: refuses the very first POST (to exercise retries), keeps the rest. */
function webhookServer(): Promise<{
  server: Server;
  url: string;
  received: Alert[];
  refused: number[];
  headers: string[];
}> {
  const received: Alert[] = [];
  const refused: number[] = [];
  const headers: string[] = [];
  let requests = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      requests++;
      headers.push(String(req.headers.authorization));
      if (requests === 1) {
        refused.push(requests);
        res.writeHead(503).end();
        return;
      }
      const parsed = JSON.parse(body) as { source: string; alert: Alert };
      expect(parsed.source).toBe('pgpulse');
      received.push(parsed.alert);
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/hook`, received, refused, headers });
    });
  });
}

describe('monitoring alerts on the sandbox', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let hook: Awaited<ReturnType<typeof webhookServer>>;
  const events: Alert[] = [];

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query(
      'primary',
      'CREATE TABLE ticks (id serial PRIMARY KEY, at timestamptz DEFAULT now())',
    );
    await sandbox.waitForReplay();
    hook = await webhookServer();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      // A probe slower than this on a loaded machine is load, not a node down: keep it generous.
      health: { intervalMs: HEALTH_MS, timeoutMs: 2_000, maxConsecutiveFailures: 2 },
      pool: { acquireTimeoutMs: 2_000, connectTimeoutMs: 500, maxSize: 2 },
      consistency: { level: 'eventual' },
      monitoring: {
        intervalMs: INTERVAL,
        // Long enough that nothing fires twice in this file: each lifecycle is seen once.
        cooldownMs: 120_000,
        thresholds: { replicationLagMs: LAG_MS, slowQueryMs: 300, connectionUsage: 0.8 },
        webhook: { url: hook.url, headers: { authorization: TOKEN }, retries: 3, backoffMs: 50 },
      },
    });
    cluster.on('alert', (alert) => events.push(alert));
    await cluster.ready();
  }, 60_000);

  afterAll(async () => {
    await cluster?.close();
    hook?.server.close();
    await sandbox?.stop();
  });

  const fired = (id: string) => events.find((a) => a.id === id && a.state === 'firing');
  const resolved = (id: string) => events.find((a) => a.id === id && a.state === 'resolved');

  it('starts quiet: no alert fires on a healthy, idle cluster', async () => {
    const rounds = cluster.stats().alertRounds;
    await until('two rounds', () => cluster.stats().alertRounds >= rounds + 2);
    expect(cluster.alerts()).toEqual([]);
  });

  it('replication lag: fires within 2 rounds of pgpulse seeing it over the threshold, resolves after resume', async () => {
    const id = 'replication-lag:replica-1';
    await sandbox.pauseReplay('replica1');
    const writer = setInterval(
      () => void cluster.pool.query('INSERT INTO ticks DEFAULT VALUES').catch(() => {}),
      20,
    );
    try {
      const lagOf = () => cluster.stats().nodes.find((n) => n.name === 'replica-1')?.lagMs;
      await until('lag over the threshold', () => (lagOf() ?? 0) >= LAG_MS);
      const roundAtBreach = cluster.stats().alertRounds;
      const alert = await until('the lag alert', () => fired(id));
      // The round in flight when the lag crossed may have sampled just before it: at most 2.
      expect(cluster.stats().alertRounds - roundAtBreach).toBeLessThanOrEqual(2);
      expect(alert).toMatchObject({
        kind: 'replication-lag',
        node: 'replica-1',
        threshold: LAG_MS,
      });
      expect(alert.value).toBeGreaterThanOrEqual(LAG_MS);
      expect(Date.parse(alert.since)).not.toBeNaN();
      expect(cluster.alerts().map((a) => a.id)).toContain(id);
    } finally {
      await sandbox.resumeReplay('replica1');
      clearInterval(writer);
    }
    const done = await until('the lag alert to resolve', () => resolved(id));
    expect(Date.parse(done.resolvedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(done.since));
    expect(cluster.alerts().map((a) => a.id)).not.toContain(id);
  }, 40_000);

  it('connection usage: fires past 80 % of max_connections and resolves when they close', async () => {
    const id = 'connection-usage:primary';
    const clients: pg.Client[] = [];
    try {
      // The sandbox's max_connections is its own (a standby cannot run with fewer than the
      // primary's template): fill up to just past 80 % of whatever it is.
      const rows = await sandbox.query<{ used: number; max: number }>(
        'primary',
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS used, current_setting('max_connections')::int AS max",
      );
      const { used, max } = rows[0]!;
      const needed = Math.ceil(0.8 * max) + 1 - used;
      for (let i = 0; i < needed; i++) {
        const client = new pg.Client({ connectionString: sandbox.primary.url });
        client.on('error', () => {});
        await client.connect();
        clients.push(client);
      }
      const alert = await until('the connection alert', () => fired(id));
      expect(alert.value).toBeGreaterThanOrEqual(0.8);
      expect(alert.threshold).toBe(0.8);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => {})));
    }
    await until('the connection alert to resolve', () => resolved(id));
  }, 40_000);

  it('slow query: a statement over slowQueryMs fires, and a quiet interval resolves it', async () => {
    await cluster.pool.query('SELECT pg_sleep(0.45)');
    const alert = await until('the slow-query alert', () =>
      events.find((a) => a.kind === 'slow-query' && a.state === 'firing'),
    );
    expect(alert.value).toBeGreaterThanOrEqual(300);
    await until('the slow-query alert to resolve', () => resolved(alert.id));
  }, 30_000);

  it('killed replica: node-down fires with the reason, and resolves when it is back', async () => {
    const id = 'node-down:replica-2';
    await sandbox.kill('replica2');
    const alert = await until('the node-down alert', () => fired(id));
    expect(alert.message).toContain('replica-2');
    await sandbox.start('replica2');
    await until('the node-down alert to resolve', () => resolved(id), 30_000);
  }, 60_000);

  it('the webhook got each lifecycle exactly once, retried past a refusal, with no secret in it', async () => {
    const ids = [
      'replication-lag:replica-1',
      'connection-usage:primary',
      'node-down:replica-2',
      events.find((a) => a.kind === 'slow-query')?.id ?? 'slow-query',
    ];
    await until('every transition delivered', () =>
      ids.every((id) => hook.received.filter((a) => a.id === id).length >= 2),
    );
    expect(hook.refused.length).toBe(1);
    for (const id of ids) {
      const states = hook.received.filter((a) => a.id === id).map((a) => a.state);
      expect(states, id).toEqual(['firing', 'resolved']);
    }
    // Every event the cluster emitted reached the endpoint, in the same order.
    expect(hook.received.map((a) => `${a.id}/${a.state}`)).toEqual(
      events.map((a) => `${a.id}/${a.state}`),
    );
    const password = new URL(sandbox.primary.url).password;
    const payload = JSON.stringify(hook.received);
    if (password) expect(payload).not.toContain(password);
    expect(payload).not.toContain('webhook-secret-token');
    expect(payload).not.toContain(String(sandbox.primary.port));
    expect(hook.headers.every((h) => h === TOKEN)).toBe(true);
  }, 30_000);

  it('close() stops the monitoring timer', async () => {
    await cluster.close();
    const rounds = cluster.stats().alertRounds;
    await sleep(3 * INTERVAL);
    expect(cluster.stats().alertRounds).toBe(rounds);
  });
});

describe('monitoring config', () => {
  it('is off without its section and fills every default with it', () => {
    expect(parseConfig({ primary: 'postgres://h/db' }).monitoring.enabled).toBe(false);
    const config = parseConfig({ primary: 'postgres://h/db', monitoring: {} });
    expect(config.monitoring).toMatchObject({
      enabled: true,
      intervalMs: 10_000,
      thresholds: { connectionUsage: 0.8, slowQueryMs: 1_000, replicationLagMs: 10_000 },
    });
  });

  it('names a misspelt threshold with a dotted path and a suggestion', () => {
    let error: unknown;
    try {
      parseConfig({
        primary: 'postgres://h/db',
        monitoring: { thresholds: { conectionUsage: 0.5 } },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(String((error as Error).message)).toContain('monitoring.thresholds');
    expect(String((error as Error).message)).toContain('connectionUsage');
  });

  it('rejects a webhook that is not an http(s) URL', () => {
    expect(() =>
      parseConfig({ primary: 'postgres://h/db', monitoring: { webhook: { url: 'ftp://x' } } }),
    ).toThrow(/monitoring\.webhook\.url/);
  });
});
