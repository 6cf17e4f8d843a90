/**
 * `pgpulse demo [--duration <s>] [--json] [--no-faults]`. Exit code: 0 when every invariant
 * held, 1 when one broke, 2 when the demo could not run, 130 after Ctrl-C. Nothing is left
 * behind in any case: the sandbox is stopped in `finally`, and its own exit hooks and watchdog
 * cover a hard kill.
 */
import type { Command } from 'commander';
import { DEFAULT_DURATION_S, MIN_FAULT_DURATION_S } from '../demo/durations.js';
import { renderSummary } from '../demo/summary.js';
import { Styler } from '../demo/view.js';
import { watchOrphaned } from '../lifetime.js';
import { DEMO_PACKAGES, MissingPackagesError, requirePackages } from '../optional.js';
import { positiveNumber, useColor } from './options.js';

interface DemoFlags {
  duration: number;
  json: boolean;
  faults: boolean;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'start a primary + 2 synchronous replicas, run a trading workload through drizzle, Prisma and TypeORM on pgpulse, inject faults, and check that no read was stale and no acknowledged write was lost',
    )
    .option(
      '--duration <seconds>',
      'seconds of workload',
      positiveNumber('--duration'),
      DEFAULT_DURATION_S,
    )
    .option(
      '--json',
      'print the summary as one JSON object on stdout (and nothing else there)',
      false,
    )
    .option(
      '--no-faults',
      'run the workload without pausing replay, slow queries or killing the primary',
    )
    .action(async (flags: DemoFlags) => {
      process.exitCode = await demo(flags);
    });
}

async function demo(flags: DemoFlags): Promise<number> {
  if (flags.faults && flags.duration < MIN_FAULT_DURATION_S) {
    process.stderr.write(
      `--duration must be at least ${MIN_FAULT_DURATION_S} s with faults (or pass --no-faults)\n`,
    );
    return 2;
  }
  try {
    requirePackages('demo', DEMO_PACKAGES);
  } catch (error) {
    if (!(error instanceof MissingPackagesError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 2;
  }
  // Loaded only now: the demo brings the three ORMs and the sandbox, which `doctor` never needs.
  const { DemoInterruptedError, runDemo } = await import('../demo/run.js');
  const tty = !flags.json && process.stdout.isTTY === true;
  const color = useColor(process.stdout);
  const interrupt = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    // A second Ctrl-C does not wait for the clean-up (the sandbox's exit hooks still run).
    if (interrupts > 1) process.exit(130);
    process.stderr.write('\nstopping: shutting the cluster down…\n');
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The launcher (pnpm, npx) killed without passing the signal on: stop as for Ctrl-C.
  const unwatch = watchOrphaned(onSignal);
  try {
    const report = await runDemo({
      durationS: flags.duration,
      faults: flags.faults,
      mode: flags.json ? 'json' : tty ? 'tty' : 'lines',
      color,
      signal: interrupt.signal,
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(renderSummary(report, new Styler(color && tty)));
    return report.ok ? 0 : 1;
  } catch (error) {
    if (error instanceof DemoInterruptedError || interrupt.signal.aborted) {
      process.stderr.write('interrupted; the cluster is stopped and its files removed\n');
      return 130;
    }
    process.stderr.write(
      `pgpulse demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 2;
  } finally {
    unwatch();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
