/**
 * `pgpulse sandbox [--replicas n] [--synchronous] [--json]`: a real local primary + N streaming
 * replicas for trying pgpulse by hand. Prints the URLs and waits for Ctrl-C, then stops the
 * servers and deletes their folder.
 */
import { startCluster } from '@pgpulse/sandbox';
import type { Command } from 'commander';
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
      await sandbox(flags);
    });
}

async function sandbox(flags: SandboxFlags): Promise<void> {
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
  await new Promise<void>((resolve) => {
    const keepAlive = setInterval(() => {}, 1 << 30);
    const stop = () => {
      clearInterval(keepAlive);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await cluster.stop();
}
