import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../main.ts', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return check();
}

async function accepts(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

// A launcher like pnpm: starts the CLI, forwards nothing, and dies without passing a signal on.
const LAUNCHER = `
const { spawn } = require('node:child_process');
const child = spawn(process.execPath, ['--import', 'tsx', process.argv[1], 'sandbox', '--replicas', '1', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
child.stdout.once('data', (d) => process.stdout.write(JSON.stringify({ pid: child.pid, ...JSON.parse(String(d)) }) + '\\n'));
setInterval(() => {}, 1 << 30);
`;

describe('pgpulse sandbox', () => {
  it('stops its servers when its launcher dies without passing a signal on (pnpm on SIGTERM)', async () => {
    const launcher = spawn(process.execPath, ['-e', LAUNCHER, main], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      launcher.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      launcher.on('exit', (code) => reject(new Error(`launcher exited early (${code})`)));
    });
    const started = JSON.parse(line) as { pid: number; primary: string };
    expect(alive(started.pid)).toBe(true);
    expect(await accepts(started.primary)).toBe(true);

    launcher.kill('SIGKILL');
    expect(await waitUntil(() => !alive(started.pid), 20_000)).toBe(true);
    expect(await waitUntil(async () => !(await accepts(started.primary)), 10_000)).toBe(true);
  });
});
