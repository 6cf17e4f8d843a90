/**
 * `pgpulse doctor <url...>`: connects to the nodes as pgpulse would (the first URL is the
 * primary, the others replicas), waits for one round of health probes, and prints what
 * pgpulse sees of each node. Exit code 1 when the primary cannot be reached, 2 on bad input.
 */
import { type Cluster, createCluster, PgPulseError, redactUrl } from '@pgpulse/core';
import type { Command } from 'commander';
import { Styler } from '../demo/view.js';
import { useColor } from './options.js';

interface DoctorFlags {
  json: boolean;
  timeout: string;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check a primary and its replicas: role, lag, breaker, as pgpulse sees them')
    .argument('<url...>', 'postgres:// URLs: the primary first, then the replicas')
    .option('--json', 'print the result as JSON', false)
    .option('--timeout <ms>', 'health probe timeout', '2000')
    .action(async (urls: string[], flags: DoctorFlags) => {
      process.exitCode = await doctor(urls, flags);
    });
}

interface NodeReport {
  name: string;
  /** What pgpulse configured it as. */
  configured: 'primary' | 'replica';
  role: string;
  up: boolean;
  lagMs: number | undefined;
  lagBytes: number | undefined;
  lagging: boolean;
  breaker: string;
  address: string;
}

async function doctor(urls: readonly string[], flags: DoctorFlags): Promise<number> {
  const [primary, ...replicas] = urls;
  if (!primary) return 2;
  const timeoutMs = Number(flags.timeout);
  let cluster: Cluster;
  try {
    cluster = createCluster({
      primary,
      replicas,
      applicationName: 'pgpulse-doctor',
      health: { intervalMs: 1_000, timeoutMs, maxConsecutiveFailures: 1 },
      pool: { maxSize: 1, connectTimeoutMs: timeoutMs },
      telemetry: { enabled: false },
    });
  } catch (error) {
    process.stderr.write(`${error instanceof PgPulseError ? error.message : String(error)}\n`);
    return 2;
  }
  cluster.on('connection-error', () => {});
  try {
    await cluster.ready();
    const stats = cluster.stats();
    const nodes: NodeReport[] = stats.nodes.map((n, i) => ({
      name: n.name,
      configured: i === 0 ? 'primary' : 'replica',
      role: n.role,
      up: n.up,
      lagMs: n.lagMs,
      lagBytes: n.lagBytes,
      lagging: n.lagging,
      breaker: n.breaker,
      address: redactUrl(urls[i] ?? ''),
    }));
    const writable = cluster.nodes.find((n) => n.role === 'primary');
    const primaryOk =
      writable?.health.up === true && writable.health.lastProbe?.inRecovery === false;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ ok: primaryOk, nodes }, null, 2)}\n`);
    } else {
      const s = new Styler(useColor(process.stdout));
      process.stdout.write(
        s.dim(
          `${'node'.padEnd(10)} ${'role'.padEnd(8)} ${'state'.padEnd(8)} ${'lag'.padStart(10)} ${'lag bytes'.padStart(10)}  ${'breaker'.padEnd(9)} address\n`,
        ),
      );
      for (const n of nodes) {
        const state = n.up
          ? n.lagging
            ? s.yellow('lagging ')
            : s.green('up      ')
          : s.red('down    ');
        const lag = n.role === 'primary' ? '-' : n.lagMs === undefined ? '?' : `${n.lagMs} ms`;
        const bytes = n.role === 'primary' ? '-' : (n.lagBytes?.toString() ?? '?');
        process.stdout.write(
          `${n.name.padEnd(10)} ${n.role.padEnd(8)} ${state} ${lag.padStart(10)} ${bytes.padStart(10)}  ${n.breaker.padEnd(9)} ${n.address}\n`,
        );
      }
      process.stdout.write(
        primaryOk
          ? s.green('\nthe primary is reachable and writable\n')
          : s.red('\nthe primary is unreachable (or not writable)\n'),
      );
    }
    return primaryOk ? 0 : 1;
  } finally {
    await cluster.close();
  }
}
