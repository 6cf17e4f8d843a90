import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { alive, waitUntil } from './testing/index.js';

const fixture = fileURLToPath(new URL('./fixtures/start-and-hang.ts', import.meta.url));

async function startFixture() {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.on('exit', (code) => reject(new Error(`fixture exited early (${code})`)));
  });
  child.stdout.resume();
  const info = JSON.parse(line) as { dir: string; pids: number[] };
  return { child, ...info };
}

describe('no server is left behind', () => {
  it('when the process is interrupted (SIGINT)', async () => {
    const { child, dir, pids } = await startFixture();
    expect(pids.every(alive)).toBe(true);
    child.kill('SIGINT');
    await waitUntil(() => !pids.some(alive), {
      timeoutMs: 10_000,
      message: 'the servers did not exit',
    });
    await waitUntil(() => !existsSync(dir), {
      timeoutMs: 10_000,
      message: `${dir} was not removed`,
    });
  });

  it('when the process is killed outright (SIGKILL): the watchdog cleans up', async () => {
    const { child, dir, pids } = await startFixture();
    expect(pids.every(alive)).toBe(true);
    child.kill('SIGKILL');
    await waitUntil(() => !pids.some(alive), {
      timeoutMs: 15_000,
      message: 'the servers did not exit',
    });
    await waitUntil(() => !existsSync(dir), {
      timeoutMs: 15_000,
      message: `${dir} was not removed`,
    });
  });
});
