import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Cluster,
  createCluster,
  type DashboardServer,
  serveDashboard,
} from '../../packages/core/src/index.js';

/** The page's DOM, as far as the callbacks run in the browser use it (Node has no DOM types). */
declare const document: {
  querySelector(selector: string): {
    getAttribute(name: string): string | null;
    textContent: string | null;
  } | null;
};

/** Debian's chromium package; CHROMIUM_PATH overrides. Missing: the test fails, never skips. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = new URL('../../docs/dashboard.png', import.meta.url).pathname;
const LAG_MS = 1_000;

describe('the dashboard in headless Chromium, against the sandbox', () => {
  let sandbox: SandboxCluster;
  let cluster: Cluster;
  let server: DashboardServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`,
      );
    sandbox = await startCluster({ replicas: 2 });
    await sandbox.query(
      'primary',
      `CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, amount int);
       INSERT INTO orders (customer_id, amount) SELECT i % 500, i % 97 FROM generate_series(1, 100000) i;
       CREATE TABLE ticks (ts timestamptz NOT NULL, v int) PARTITION BY RANGE (ts);
       CREATE TABLE ticks_2026_06 PARTITION OF ticks FOR VALUES FROM ('2026-06-01') TO ('2026-07-01');
       CREATE TABLE ticks_2026_07 PARTITION OF ticks FOR VALUES FROM ('2026-07-01') TO ('2026-08-01');
       INSERT INTO ticks SELECT '2026-06-01'::timestamptz + i * interval '10 minutes', i FROM generate_series(1, 8000) i;
       ANALYZE;`,
    );
    await sandbox.waitForReplay();
    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: 100, timeoutMs: 500 },
      consistency: { level: 'eventual' },
      slowQuery: { thresholdMs: 20, minExplainIntervalMs: 0 },
      monitoring: {
        intervalMs: 300,
        thresholds: { replicationLagMs: LAG_MS, slowQueryMs: 20_000 },
      },
    });
    cluster.on('connection-error', () => {});
    await cluster.ready();
    // A slow read with a plan to show, routed reads and writes for the routing split. The
    // pg_sleep makes it slow on any machine: the scan alone takes 11 ms on an idle one, under
    // the 20 ms threshold (it was over it only on a loaded machine).
    for (let i = 0; i < 3; i++)
      await cluster.pool.query(
        'WITH pause AS MATERIALIZED (SELECT pg_sleep(0.03)) SELECT o.* FROM orders o, pause WHERE o.customer_id = $1',
        [i],
      );
    await cluster.pool.query('INSERT INTO orders (customer_id, amount) VALUES (1, 1)');
    server = await serveDashboard(cluster, { intervalMs: 250, catalogEveryMs: 1_000 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  }, 90_000);

  afterAll(async () => {
    await sandbox?.resumeReplay('replica1').catch(() => {});
    await browser?.close();
    await server?.close();
    await cluster?.close();
    await sandbox?.stop();
  });

  const lagOnPage = () =>
    page.$eval('[data-node="replica-1"] .lag', (e) => Number(e.getAttribute('data-lag')));

  it('shows every node, a live lag that grows after pauseReplay, the alert, slow queries and partitions; saves a screenshot', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(server.url);
    for (const name of ['primary', 'replica-1', 'replica-2'])
      await page.waitForSelector(`[data-node="${name}"] [data-state="up"]`, { timeout: 15_000 });
    const before = await lagOnPage();
    expect(before).toBeLessThan(LAG_MS);
    // uPlot drew its canvas (the chart library, served locally).
    await page.waitForSelector('#lag-chart canvas');

    await sandbox.pauseReplay('replica1');
    const writer = setInterval(
      () =>
        void cluster.pool
          .query('INSERT INTO orders (customer_id, amount) VALUES (2, 2)')
          .catch(() => {}),
      20,
    );
    try {
      await page.waitForFunction(
        (limit) => {
          const e = document.querySelector('[data-node="replica-1"] .lag');
          return e !== null && Number(e.getAttribute('data-lag')) > limit;
        },
        LAG_MS,
        { timeout: 20_000 },
      );
      expect(await lagOnPage()).toBeGreaterThan(before);
      await page.waitForSelector('tr.alert[data-alert="replication-lag:replica-1"]', {
        timeout: 20_000,
      });
      await page.waitForSelector('#slow details.slow', { timeout: 10_000 });
      await page.waitForFunction(
        () => document.querySelector('#partitions')?.textContent?.includes('public.ticks'),
        undefined,
        { timeout: 10_000 },
      );
      // Opened by a click, it stays open across live updates: the plan tree shows.
      await page.click('#slow details.slow summary');
      await page.waitForSelector('#slow details.slow[open] ul.plan li', { timeout: 5_000 });
      await page.waitForTimeout(600);
      expect(await page.$('#slow details.slow[open] ul.plan')).not.toBeNull();
      await mkdir(new URL('../../docs/', import.meta.url), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    } finally {
      clearInterval(writer);
      await sandbox.resumeReplay('replica1');
    }
    expect(await page.textContent('#routing')).toMatch(/replica|primary/);
    expect(errors).toEqual([]);
    expect(existsSync(SCREENSHOT)).toBe(true);
  }, 90_000);
});
