import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./fixtures/start-and-hang.ts', import.meta.url));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

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
    expect(await waitUntil(() => !pids.some(alive), 10_000)).toBe(true);
    expect(await waitUntil(() => !existsSync(dir), 10_000)).toBe(true);
  });

  it('when the process is killed outright (SIGKILL): the watchdog cleans up', async () => {
    const { child, dir, pids } = await startFixture();
    expect(pids.every(alive)).toBe(true);
    child.kill('SIGKILL');
    expect(await waitUntil(() => !pids.some(alive), 15_000)).toBe(true);
    expect(await waitUntil(() => !existsSync(dir), 15_000)).toBe(true);
  });
});
