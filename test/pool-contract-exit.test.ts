// A script that never calls end() exits once idle; pg.Pool's connectionTimeoutMillis holds
// against a server that accepts TCP and never answers.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPoolFromPgOptions } from '../packages/core/src/index.js';

let sandbox: SandboxCluster;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
}, 60_000);

afterAll(async () => {
  await sandbox?.stop();
});

const core = fileURLToPath(new URL('../packages/core/src/index.ts', import.meta.url));

/** Runs a script that queries once and never ends the pool; resolves with its exit code and output. */
function runScript(pool: string): Promise<{ code: number | null; out: string }> {
  const script = `
    const { createCluster } = await import(${JSON.stringify(core)});
    const c = createCluster({ primary: process.env.P, replicas: JSON.parse(process.env.R), pool: ${pool} });
    const r = await c.pool.query('SELECT 1 AS one');
    console.log('answered', r.rows[0].one);
  `;
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx/esm', '--input-type=module', '-e', script],
      {
        env: {
          ...process.env,
          P: sandbox.primary.url,
          R: JSON.stringify(sandbox.replicas.map((r) => r.url)),
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    // Well past any idle timeout used here: a process still running then never exits by itself.
    const killer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, out });
    });
  });
}

describe('exit on idle', () => {
  it('a script that never calls end() exits by itself once its connections are idle', async () => {
    const { code, out } = await runScript('{}');
    expect(out).toContain('answered 1');
    expect(code).toBe(0);
  }, 60_000);

  it('with exitOnIdle: false it still exits, once the idle timeout has closed its connections', async () => {
    const { code, out } = await runScript('{ exitOnIdle: false, idleTimeoutMs: 300 }');
    expect(out).toContain('answered 1');
    expect(code).toBe(0);
  }, 60_000);
});

describe("pg.Pool's connectionTimeoutMillis", () => {
  it('bounds pool.query against a server that accepts TCP and never answers', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.on('data', () => {}); // swallow the start-up packet, answer nothing
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const pool = createPoolFromPgOptions({
      host: '127.0.0.1',
      port,
      connectionTimeoutMillis: 150,
    });
    try {
      const started = performance.now();
      const err = await pool.query('SELECT 1').then(
        () => undefined,
        (e: unknown) => e,
      );
      const elapsed = performance.now() - started;
      // pg's own connect timeout or pgpulse's typed ConnectTimeoutError, whichever fires first.
      expect(err).toBeInstanceOf(Error);
      expect(String((err as Error).message)).toMatch(/timeout|timed out|within/i);
      // pgpulse's own limits are 10 s (acquire) and 1 s (probe): under them, the option held.
      expect(elapsed).toBeLessThan(1_000);
    } finally {
      await pool.end().catch(() => {});
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});
