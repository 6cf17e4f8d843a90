/**
 * `pgpulse dashboard <url...>`: watches a primary and its replicas as pgpulse would (the first
 * URL is the primary) and serves the live dashboard page until interrupted. Loopback only
 * unless `--token` is given; exit code 2 on bad input.
 */
import { createCluster, PgPulseError, serveDashboard } from '@pgpulse/core';
import type { Command } from 'commander';
import { watchOrphaned } from '../lifetime.js';

interface DashboardFlags {
  host: string;
  port: string;
  token?: string;
  interval: string;
}

export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .description('serve a live page: nodes, lag, breakers, routing, alerts, slow queries, advice')
    .argument('<url...>', 'postgres:// URLs: the primary first, then the replicas')
    .option('--host <host>', 'address to listen on (a non-loopback one needs --token)', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free one)', '0')
    .option('--token <token>', 'required on every request (or set PGPULSE_DASHBOARD_TOKEN)')
    .option('--interval <ms>', 'alert and health interval', '2000')
    .action(async (urls: string[], flags: DashboardFlags) => {
      process.exitCode = await dashboardCommand(urls, flags);
    });
}

async function dashboardCommand(urls: readonly string[], flags: DashboardFlags): Promise<number> {
  const [primary, ...replicas] = urls;
  if (!primary) return 2;
  const intervalMs = Number(flags.interval);
  const token = flags.token ?? process.env.PGPULSE_DASHBOARD_TOKEN;
  try {
    const cluster = createCluster({
      primary,
      replicas,
      applicationName: 'pgpulse-dashboard',
      health: { intervalMs: Math.min(intervalMs, 1_000) },
      pool: { maxSize: 2 },
      monitoring: { intervalMs },
    });
    cluster.on('connection-error', () => {});
    await cluster.ready();
    const server = await serveDashboard(cluster, {
      host: flags.host,
      port: Number(flags.port),
      ...(token ? { token } : {}),
    });
    process.stdout.write(`pgpulse dashboard: ${server.url}\n(Ctrl-C to stop)\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
      watchOrphaned(resolve);
    });
    await server.close();
    await cluster.close();
    return 0;
  } catch (error) {
    process.stderr.write(`${error instanceof PgPulseError ? error.message : String(error)}\n`);
    return 2;
  }
}
