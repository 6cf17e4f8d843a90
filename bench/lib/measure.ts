// Shared by the benchmarks: closed-loop workers for a fixed time, and A B B A interleaving so
// machine drift hits both sides alike.
export type Query = (sql: string, params: unknown[]) => Promise<unknown>;
export type Workload = (query: Query, i: number) => Promise<unknown>;

export interface Sample {
  readonly qps: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpuUsPerQuery: number;
}

export async function measure(
  query: Query,
  workload: Workload,
  seconds: number,
  workers: number,
): Promise<Sample> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < deadline) {
        const s = performance.now();
        await workload(query, n++);
        latencies.push(performance.now() - s);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return {
    qps: latencies.length / elapsed,
    p50: latencies[Math.floor(latencies.length * 0.5)] ?? 0,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
    cpuUsPerQuery: (cpu.user + cpu.system) / latencies.length,
  };
}

export const median = (xs: readonly number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** Runs baseline (A) and candidate (B) alternately, A B B A ..., and prints medians and ratios. */
export async function compare(
  label: string,
  names: readonly [string, string],
  a: Query,
  b: Query,
  workload: Workload,
  options: { pairs: number; seconds: number; workers: number },
): Promise<{ throughputRatio: number; cpuDeltaUs: number }> {
  const as: Sample[] = [];
  const bs: Sample[] = [];
  for (let i = 0; i < options.pairs; i++) {
    const order = i % 2 === 0 ? ([a, b] as const) : ([b, a] as const);
    for (const q of order)
      (q === a ? as : bs).push(await measure(q, workload, options.seconds, options.workers));
  }
  const m = (xs: Sample[], f: (s: Sample) => number) => median(xs.map(f));
  const line = (name: string, xs: Sample[]) =>
    `${label.padEnd(8)} ${name.padEnd(14)} ${m(xs, (s) => s.qps).toFixed(0)} q/s, p50 ${m(xs, (s) => s.p50).toFixed(3)} ms, p99 ${m(xs, (s) => s.p99).toFixed(3)} ms, ${m(xs, (s) => s.cpuUsPerQuery).toFixed(1)} µs CPU/q`;
  console.log(line(names[0], as));
  console.log(line(names[1], bs));
  const throughputRatio = m(bs, (s) => s.qps) / m(as, (s) => s.qps);
  const cpuDeltaUs = m(bs, (s) => s.cpuUsPerQuery) - m(as, (s) => s.cpuUsPerQuery);
  console.log(
    `${label.padEnd(8)} ratio ${names[1]}/${names[0]}: throughput ${throughputRatio.toFixed(3)}, p50 ${(m(bs, (s) => s.p50) / m(as, (s) => s.p50)).toFixed(3)}, p99 ${(m(bs, (s) => s.p99) / m(as, (s) => s.p99)).toFixed(3)}, CPU/q ${cpuDeltaUs >= 0 ? '+' : ''}${cpuDeltaUs.toFixed(1)} µs (${options.pairs} pairs x ${options.seconds}s, ${options.workers} workers)`,
  );
  return { throughputRatio, cpuDeltaUs };
}
