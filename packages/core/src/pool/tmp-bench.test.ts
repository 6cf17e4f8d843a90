import { startCluster } from '@pgpulse/sandbox';
import pg from 'pg';
import { it } from 'vitest';
import { NodePool } from './index.js';

it('bench', async () => {
  const cluster = await startCluster({ replicas: 0 });
  const password = new URL(cluster.primary.url).password;
  const conn = { host: '127.0.0.1', port: cluster.primary.port, user: 'postgres', password };
  const lines: string[] = [];
  for (const prePing of [false, true]) {
    const pool = new NodePool({ name: 'p', role: 'primary', host: '127.0.0.1', port: 1 }, conn, {
      minSize: 1, maxSize: 10, overflow: 0, acquireTimeoutMs: 1000, connectTimeoutMs: 1000,
      idleTimeoutMs: 30000, prePing, prePingAfterIdleMs: 5000, recycleSeconds: 3600, recycleJitter: 0.1,
    });
    await pool.warm();
    for (let r = 0; r < 3; r++) {
      const n = 200_000;
      const t = performance.now();
      for (let i = 0; i < n; i++) { const c = await pool.acquire(); c.release(); }
      lines.push(`NodePool prePing=${prePing}: ${((performance.now() - t) * 1000 / n).toFixed(3)} us`);
    }
    await pool.end();
  }
  const pp = new pg.Pool({ ...conn, max: 10 });
  (await pp.connect()).release();
  for (let r = 0; r < 3; r++) {
    const n = 200_000;
    const t = performance.now();
    for (let i = 0; i < n; i++) { const c = await pp.connect(); c.release(); }
    lines.push(`pg.Pool: ${((performance.now() - t) * 1000 / n).toFixed(3)} us`);
  }
  await pp.end();
  await cluster.stop();
  console.log(lines.join('\n'));
}, 120_000);
