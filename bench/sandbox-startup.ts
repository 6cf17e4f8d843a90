// How long a 1 + 2 sandbox cluster takes to start and stop (goal: under 2 s on 2 cores).
// Run: pnpm bench:sandbox
import { startCluster } from '@pgpulse/sandbox';

const runs = Number(process.env.RUNS ?? 5);
const starts: number[] = [];
const stops: number[] = [];
// The first start may also run initdb once per installation; report it separately.
const t0 = performance.now();
const first = await startCluster({ replicas: 2 });
const firstStart = performance.now() - t0;
await first.stop();

for (let i = 0; i < runs; i++) {
  const a = performance.now();
  const cluster = await startCluster({ replicas: 2 });
  const b = performance.now();
  await cluster.stop();
  starts.push(b - a);
  stops.push(performance.now() - b);
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${Math.round(ms)} ms`;
console.log(`sandbox 1+2: first start ${fmt(firstStart)} (may include initdb)`);
console.log(
  `sandbox 1+2 over ${runs} runs: start median ${fmt(median(starts))} (max ${fmt(Math.max(...starts))}), stop median ${fmt(median(stops))}`,
);
console.log(
  `start+stop median vs 2 s goal: ${((median(starts) + median(stops)) / 2000).toFixed(2)}x`,
);
