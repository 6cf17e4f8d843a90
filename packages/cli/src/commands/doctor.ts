/**
 * `pgpulse doctor <url...>`: connects to the nodes as pgpulse would (the first URL is the
 * primary, the others replicas), waits for one round of health probes, and prints what
 * pgpulse sees of each node. Exit code 1 when the primary cannot be reached, 2 on bad input.
 */
import {
  type Cluster,
  createCluster,
  type Diagnosis,
  diagnoseConnectionError,
  NodeConnectionError,
  PgPulseError,
  redactUrl,
} from '@pgpulse/core';
import type { Command } from 'commander';
import pg from 'pg';
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
      process.exitCode = await doctorCommand(urls, flags);
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
  /** Why it is down (auth-failed, refused, timeout, dns, unknown-database, ...); only when down. */
  down?: Diagnosis;
}

interface Output {
  write(text: string): unknown;
}

/** Runs the doctor; returns the exit code. `out`/`err` default to the process's streams. */
export async function doctorCommand(
  urls: readonly string[],
  flags: DoctorFlags,
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
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
    err.write(`${error instanceof PgPulseError ? error.message : String(error)}\n`);
    return 2;
  }
  cluster.on('connection-error', () => {});
  try {
    // ready() rejects for a node that refuses the set-up; the doctor reports every node itself.
    await cluster.ready().catch((error: unknown) => {
      if (!(error instanceof NodeConnectionError)) throw error;
    });
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
    await Promise.all(
      nodes.map(async (n, i) => {
        if (!n.up) n.down = await diagnose(urls[i] ?? '', timeoutMs);
      }),
    );
    const writable = cluster.nodes.find((n) => n.role === 'primary');
    const primaryOk =
      writable?.health.up === true && writable.health.lastProbe?.inRecovery === false;
    if (flags.json) {
      out.write(`${JSON.stringify({ ok: primaryOk, nodes }, null, 2)}\n`);
    } else {
      const s = new Styler(out === process.stdout && useColor(process.stdout));
      out.write(
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
        out.write(
          `${n.name.padEnd(10)} ${n.role.padEnd(8)} ${state} ${lag.padStart(10)} ${bytes.padStart(10)}  ${n.breaker.padEnd(9)} ${n.address}\n`,
        );
        if (n.down)
          out.write(
            `${''.padEnd(11)}${s.red(`${n.down.reason}:`)} ${n.down.detail}\n${''.padEnd(11)}${s.dim(`fix: ${n.down.fix}`)}\n`,
          );
      }
      out.write(
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

/**
 * One connection attempt of its own, to get the error object (the probe keeps only its
 * message): PostgreSQL's SQLSTATE or the system's code names the reason reliably.
 */
async function diagnose(url: string, timeoutMs: number): Promise<Diagnosis> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    application_name: 'pgpulse-doctor',
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return {
      reason: 'other',
      detail: 'it answers now, but failed its health probe moments ago',
      fix: 'run the doctor again; a flapping node points at the network or an overloaded server',
    };
  } catch (error) {
    return diagnoseConnectionError(error);
  } finally {
    await client.end().catch(() => {});
  }
}
