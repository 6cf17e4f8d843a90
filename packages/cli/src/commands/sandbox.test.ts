import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { alive, waitUntil } from '@pgpulse/sandbox/testing';
import pg from 'pg';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('../main.ts', import.meta.url));

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
    await waitUntil(() => !alive(started.pid), {
      timeoutMs: 20_000,
      message: 'the sandbox process did not exit',
    });
    await waitUntil(async () => !(await accepts(started.primary)), {
      timeoutMs: 10_000,
      message: 'the primary still accepts connections',
    });
  });
});
