/**
 * `pgpulse demo --duration 12 --json` as a user (or CI) runs it: a subprocess on a real
 * primary + 2 synchronous replicas. Its stdout must be one JSON object whose invariants held,
 * with a failover during which writes resumed, and reads served by replicas; and it must leave
 * no PostgreSQL process behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { DemoReport } from './demo/report.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const TSX = createRequire(import.meta.url).resolve('tsx/cli');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSX, MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Processes whose command line names `dir` (the sandbox's servers run with `-D <dir>/<node>`). */
function processesUsing(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', dir], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe('pgpulse demo --json', () => {
  it('runs a workload through three ORMs across a failover with 0 stale reads and 0 lost writes', async () => {
    const run = await runCli(['demo', '--duration', '12', '--json']);
    if (run.code !== 0) console.error(run.stderr);
    expect(run.code).toBe(0);

    // stdout is exactly one JSON object.
    const report = JSON.parse(run.stdout) as DemoReport;
    expect(report.ok).toBe(true);
    expect(report.orms).toEqual(['drizzle', 'prisma', 'typeorm']);
    for (const check of report.invariants) expect(check, check.detail).toMatchObject({ ok: true });

    expect(report.staleReads.count).toBe(0);
    // Non-vacuous, not a throughput figure: a loaded machine runs fewer requests in 12 s.
    expect(report.staleReads.checks).toBeGreaterThan(0);
    expect(report.writes.lost).toBe(0);
    expect(report.writes.acknowledged).toBeGreaterThan(0);
    expect(report.cash.actual).toBe(report.cash.expected);

    // Every ORM did real work, reads and writes.
    for (const name of report.orms) {
      const tally = report.workload.byOrm[name];
      expect(tally?.reads, name).toBeGreaterThan(0);
      expect(tally?.acknowledged, name).toBeGreaterThan(0);
    }

    // A failover happened, pgpulse elected a replica, and writes resumed on it.
    const failover = report.failover;
    expect(failover?.promoted).toMatch(/^replica-/);
    expect(failover?.detectedMs).toBeGreaterThan(0);
    expect(failover?.promotedMs).toBeGreaterThanOrEqual(failover?.detectedMs ?? 0);
    expect(failover?.firstWriteMs).toBeGreaterThan(0);
    expect(report.writes.verifiedOn).toBe(failover?.promoted);

    // Every ORM's latest-tick read goes through the query result cache, which served some of
    // them (hit ratio reported, > 0), with the invariants above intact.
    expect(typeof report.cache.hitRatio).toBe('number');
    expect(report.cache.hitRatio).toBeGreaterThan(0);
    expect(report.cache.hits).toBeGreaterThan(0);
    expect(report.observations.find((o) => o.name === 'cache served reads')?.ok).toBe(true);

    // Replicas served reads; none served a write.
    expect(report.routing.byRole.replica.reads).toBeGreaterThan(0);
    expect(report.routing.byRole.replica.writes).toBe(0);

    // The paused replica left rotation and came back.
    expect(report.replayPause?.leftRotationAfterMs).toBeGreaterThanOrEqual(0);
    expect(report.replayPause?.rejoinedAfterMs).toBeGreaterThanOrEqual(0);

    // pgpulse captured the unindexed scan with its plan (the EXPLAIN runs off the query path).
    // The scripted report (a filter on volume): on a loaded machine other reads of market_data go
    // over the 20 ms threshold too, with their index scans.
    const scan = report.slowQueries.entries.find(
      (e) => /market_data/i.test(e.query) && /volume"?\s*>=/i.test(e.query) && e.plan,
    );
    expect(scan?.plan?.outline.join('\n')).toMatch(/Seq Scan on market_data/);

    // Nothing left behind: no server of this sandbox, no folder.
    expect(report.sandbox.dir).toMatch(/pgpulse-sandbox-/);
    expect(existsSync(report.sandbox.dir)).toBe(false);
    expect(processesUsing(report.sandbox.dir)).toEqual([]);
  }, 120_000);

  it('refuses a duration too short for the fault script', async () => {
    const run = await runCli(['demo', '--duration', '2']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/--duration must be at least/);
  }, 30_000);
});
