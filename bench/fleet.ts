// pnpm bench:fleet [instances=20] [rounds=10]: N app instances as separate processes, the
// primary killed `rounds` times, automatic promotion without a coordinator, then with the etcd
// coordinator when `PGPULSE_ETCD` names an etcd endpoint (e.g. http://127.0.0.1:2379).
import { runFleet } from './lib/fleet.js';

const instances = Number(process.argv[2] ?? 20);
const rounds = Number(process.argv[3] ?? 10);
const modes: { name: string; etcd?: string }[] = [{ name: 'automatic, no coordinator' }];
if (process.env.PGPULSE_ETCD)
  modes.push({ name: 'automatic + etcd', etcd: process.env.PGPULSE_ETCD });
else
  console.log(
    'PGPULSE_ETCD not set: the etcd run is skipped (start etcd and set it to include it)',
  );
for (const mode of modes) {
  console.log(`\n== ${mode.name}: ${instances} instances, ${rounds} rounds`);
  const results = await runFleet({
    instances,
    rounds,
    ...(mode.etcd ? { etcd: mode.etcd } : {}),
    log: (line) => console.log(line),
  });
  const one = results.filter((r) => r.primaries.length === 1).length;
  const stray = results.reduce((n, r) => n + r.strayAcks, 0);
  const worst = Math.max(...results.map((r) => r.firstWriteMaxMs));
  console.log(
    `${mode.name}: rounds ${results.length}/${rounds}, exactly one primary in ${one}, ` +
      `acknowledged writes on another node ${stray}, worst first write after the kill ${worst} ms (goal < 2000)`,
  );
}
process.exit(0);
