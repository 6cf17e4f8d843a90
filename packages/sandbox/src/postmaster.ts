/** Process control of one node's server: start it and wait until it serves, signal it to stop. */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PgInstallation } from './binaries.js';
import type { Node } from './node.js';
import { sleep } from './wait.js';

/**
 * Spawns `postgres -D <dataDir>` (logging to `<dir>/<name>.log`) and waits until it accepts
 * connections: as a primary, or as a standby in hot standby.
 */
export async function launch(
  node: Node,
  dir: string,
  pg: PgInstallation,
  startTimeoutMs: number,
): Promise<void> {
  const log = openSync(join(dir, `${node.name}.log`), 'a');
  const child = spawn(join(pg.binDir, 'postgres'), ['-D', node.dataDir], {
    stdio: ['ignore', log, log],
    ...(pg.runAs ? { uid: pg.runAs.uid, gid: pg.runAs.gid } : {}),
  });
  closeSync(log);
  child.unref();
  node.process = child;
  const wanted = node.role === 'primary' || node.role === 'detached' ? 'ready' : 'standby';
  const deadline = Date.now() + startTimeoutMs;
  const pidFile = join(node.dataDir, 'postmaster.pid');
  for (;;) {
    if (!node.running) {
      throw new Error(`${node.name} exited while starting:\n${logTail(node, dir)}`);
    }
    // postmaster.pid's 8th line is the server status that pg_ctl -w waits for.
    const status = existsSync(pidFile)
      ? readFileSync(pidFile, 'utf8').split('\n')[7]?.trim()
      : undefined;
    if (status === wanted || (wanted === 'standby' && status === 'ready')) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${node.name} did not accept connections within ${startTimeoutMs} ms:\n${logTail(node, dir)}`,
      );
    }
    await sleep(5);
  }
}

function logTail(node: Node, dir: string): string {
  const path = join(dir, `${node.name}.log`);
  return existsSync(path)
    ? readFileSync(path, 'utf8').split('\n').slice(-15).join('\n')
    : '(no log)';
}

/** Sends `signal` to a running node's server and waits until it has exited. */
export async function signal(
  node: Node,
  signal: NodeJS.Signals,
  timeoutMs = 30_000,
): Promise<void> {
  const child = node.process;
  if (!child || !node.running) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${node.name} did not exit after ${signal}`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
