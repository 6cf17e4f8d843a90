/**
 * `pgpulse sandbox [--replicas n] [--synchronous] [--json]`: a real local primary + N streaming
 * replicas for trying pgpulse by hand. Prints the URLs and waits for Ctrl-C, then stops the
 * servers and deletes their folder.
 */
import type { Command } from 'commander';
import { watchOrphaned } from '../lifetime.js';
import { MissingPackagesError, requirePackages, SANDBOX_PACKAGES } from '../optional.js';
import { positiveNumber } from './options.js';

interface SandboxFlags {
  replicas: number;
  synchronous: boolean;
  json: boolean;
}

export function registerSandbox(program: Command): void {
  program
    .command('sandbox')
    .description('start a local primary + streaming replicas and print their URLs until Ctrl-C')
    .option(
      '--replicas <n>',
      'streaming replicas',
      positiveNumber('--replicas', { integer: true }),
      2,
    )
    .option('--synchronous', 'synchronous replication (commits wait for one replica)', false)
    .option('--json', 'print the URLs as JSON', false)
    .action(async (flags: SandboxFlags) => {
      try {
        requirePackages('sandbox', SANDBOX_PACKAGES);
      } catch (error) {
        if (!(error instanceof MissingPackagesError)) throw error;
        process.stderr.write(`${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      await sandbox(flags);
    });
}

async function sandbox(flags: SandboxFlags): Promise<void> {
  const { startCluster } = await import('@pgpulse/sandbox');
  const started = performance.now();
  const cluster = await startCluster({ replicas: flags.replicas, synchronous: flags.synchronous });
  const ms = Math.round(performance.now() - started);
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ primary: cluster.primary.url, replicas: cluster.replicas.map((r) => r.url) })}\n`,
    );
  } else {
    process.stdout.write(
      `${cluster.version}: primary + ${cluster.replicas.length} ${flags.synchronous ? 'synchronous' : 'asynchronous'} replicas up in ${ms} ms\n\n`,
    );
    for (const node of cluster.all) process.stdout.write(`  ${node.name.padEnd(9)} ${node.url}\n`);
    process.stdout.write('\nPress Ctrl-C to stop and delete the cluster.\n');
  }
  // Until Ctrl-C, a signal, or the launcher (pnpm, npx) going away without passing one on.
  await new Promise<void>((resolve) => {
    const keepAlive = setInterval(() => {}, 1 << 30);
    const stop = () => {
      clearInterval(keepAlive);
      unwatch();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', stop);
      resolve();
    };
    const unwatch = watchOrphaned(stop);
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    process.on('SIGHUP', stop);
  });
  await cluster.stop();
}
