// Pairs of arms (a baseline and a candidate) measured alternately, A B B A ..., each a
// closed loop of workers for a fixed time; one table row per pair.
import { median } from './measure.js';

/** One iteration of a workload; `i` picks the row, the statement, read or write. */
export type Step = (i: number) => Promise<unknown>;

export interface ArmSample {
  readonly qps: number;
  readonly cpuUsPerStatement: number;
}

export interface PairResult {
  readonly label: string;
  readonly baseline: string;
  readonly candidate: string;
  readonly baselineQps: number;
  readonly candidateQps: number;
  /** Median candidate throughput over median baseline throughput. */
  readonly ratio: number;
  readonly baselineCpuUs: number;
  readonly candidateCpuUs: number;
  readonly goal?: number;
}

export async function runArm(step: Step, seconds: number, workers: number): Promise<ArmSample> {
  const deadline = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < deadline) {
        await step(n++);
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { qps: done / elapsed, cpuUsPerStatement: (cpu.user + cpu.system) / done };
}

export async function runPair(
  label: string,
  baseline: readonly [string, Step],
  candidate: readonly [string, Step],
  options: { pairs: number; seconds: number; workers: number; goal?: number },
): Promise<PairResult> {
  const as: ArmSample[] = [];
  const bs: ArmSample[] = [];
  // Warm both (connections, prepared statements, JIT) before anything counts.
  await runArm(baseline[1], 0.3, options.workers);
  await runArm(candidate[1], 0.3, options.workers);
  for (let i = 0; i < options.pairs; i++) {
    const order = i % 2 === 0 ? [baseline, candidate] : [candidate, baseline];
    for (const arm of order) {
      const sample = await runArm(arm[1], options.seconds, options.workers);
      (arm === baseline ? as : bs).push(sample);
    }
  }
  const qps = (xs: ArmSample[]) => median(xs.map((s) => s.qps));
  const cpu = (xs: ArmSample[]) => median(xs.map((s) => s.cpuUsPerStatement));
  const result: PairResult = {
    label,
    baseline: baseline[0],
    candidate: candidate[0],
    baselineQps: qps(as),
    candidateQps: qps(bs),
    ratio: qps(bs) / qps(as),
    baselineCpuUs: cpu(as),
    candidateCpuUs: cpu(bs),
    ...(options.goal === undefined ? {} : { goal: options.goal }),
  };
  console.error(
    `${label}: ${result.candidate} / ${result.baseline} = ${result.ratio.toFixed(3)} (${result.candidateQps.toFixed(0)} vs ${result.baselineQps.toFixed(0)} q/s)`,
  );
  return result;
}

/** A markdown table of the pairs. */
export function table(results: readonly PairResult[]): string {
  const lines = [
    '| workload | baseline | candidate | baseline q/s | candidate q/s | ratio | goal | CPU µs/stmt (base → cand) |',
    '|---|---|---|---:|---:|---:|---|---:|',
  ];
  for (const r of results) {
    const goal =
      r.goal === undefined ? '' : `≥ ${r.goal} ${r.ratio >= r.goal ? 'met' : '**NOT met**'}`;
    lines.push(
      `| ${r.label} | ${r.baseline} | ${r.candidate} | ${r.baselineQps.toFixed(0)} | ${r.candidateQps.toFixed(0)} | ${r.ratio.toFixed(3)} | ${goal} | ${r.baselineCpuUs.toFixed(1)} → ${r.candidateCpuUs.toFixed(1)} |`,
    );
  }
  return lines.join('\n');
}
