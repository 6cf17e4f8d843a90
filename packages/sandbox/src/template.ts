import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { type PgInstallation, type RunAs, sandboxRoot } from './binaries.js';

/** A freshly initialised, cleanly shut down data directory that every node is copied from. */
export interface Template {
  readonly dataDir: string;
  /** Password of the `postgres` superuser (used when auth is scram-sha-256). */
  readonly password: string;
}

/**
 * initdb is the slowest step of starting a cluster (about a second), and its output depends only
 * on the installation, so it runs once per installation and the result is copied per node. A
 * standby copied from the same cleanly shut down directory as its primary shares its system
 * identifier and checkpoint, so it can stream from the primary without pg_basebackup.
 */
export function ensureTemplate(pg: PgInstallation): Template {
  const key = createHash('sha256')
    .update(`${pg.binDir}\0${pg.version}\0${pg.runAs?.uid ?? 'self'}\0v1`)
    .digest('hex')
    .slice(0, 12);
  const root = join(sandboxRoot(), `pgpulse-template-${key}`);
  const ready = (): Template | undefined =>
    existsSync(join(root, 'ready'))
      ? { dataDir: join(root, 'data'), password: readFileSync(join(root, 'password'), 'utf8') }
      : undefined;
  const existing = ready();
  if (existing) return existing;

  const staging = `${root}.${process.pid}.${Date.now()}.tmp`;
  mkdirSync(staging, { recursive: true, mode: 0o755 });
  const password = randomBytes(12).toString('hex');
  writeFileSync(join(staging, 'password'), password, { mode: 0o644 });
  if (pg.runAs) chownTo(staging, pg.runAs);
  const result = spawnSync(
    join(pg.binDir, 'initdb'),
    [
      '-D',
      join(staging, 'data'),
      '-U',
      'postgres',
      '--auth=trust',
      `--pwfile=${join(staging, 'password')}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
      // 1 MB WAL segments keep each copied data directory small (16 MB otherwise).
      '--wal-segsize=1',
    ],
    { encoding: 'utf8', ...(pg.runAs ? { uid: pg.runAs.uid, gid: pg.runAs.gid } : {}) },
  );
  if (result.status !== 0) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`initdb failed (exit ${result.status}):\n${result.stderr || result.stdout}`);
  }
  writeFileSync(join(staging, 'ready'), '');
  try {
    renameSync(staging, root);
  } catch {
    // A concurrent process finished first; use its template.
    rmSync(staging, { recursive: true, force: true });
  }
  const made = ready();
  if (!made) throw new Error(`Sandbox template at ${root} is incomplete; delete it and retry.`);
  return made;
}

export function chownTo(path: string, runAs: RunAs): void {
  chownSync(path, runAs.uid, runAs.gid);
}
