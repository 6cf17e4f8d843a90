// One app instance of the fleet harness (bench/lib/fleet.ts), as its own process: a pgpulse
// cluster with its own replica order and probe phase, writing in a loop and reporting every
// acknowledged write (and the server port that acknowledged it) to the parent.
import { createCluster, type PgPulseConfig } from '@pgpulse/core';

interface WorkerArgs {
  readonly instance: number;
  readonly phaseMs: number;
  readonly config: PgPulseConfig;
}

const args = JSON.parse(process.argv[2] ?? '{}') as WorkerArgs;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let running = true;
process.on('message', (message: { t?: string }) => {
  if (message.t === 'stop') running = false;
});
process.on('disconnect', () => {
  running = false;
});

await sleep(args.phaseMs);
const cluster = createCluster(args.config);
cluster.on('several-instances', () => {});
cluster.on('split-brain', (e) => process.send?.({ t: 'split-brain', nodes: e.nodes }));
cluster.on('failover-failed', ({ error }) =>
  process.send?.({ t: 'failover-failed', code: 'failover-failed', message: error.message }),
);
// A loaded machine can time a first connect out: ready() is tried again for up to 2 minutes.
for (const started = Date.now(); ; ) {
  try {
    await cluster.ready();
    break;
  } catch (err) {
    if (Date.now() - started > 120_000) throw err;
    await sleep(200);
  }
}
process.send?.({ t: 'ready' });
let seq = 0;
while (running) {
  seq++;
  try {
    const { rows } = await cluster.pool.query<{ port: number }>(
      'INSERT INTO fleet_writes (instance, seq) VALUES ($1, $2) RETURNING inet_server_port() AS port',
      [args.instance, seq],
    );
    process.send?.({ t: 'ack', seq, port: rows[0]?.port, at: Date.now() });
    await sleep(10);
  } catch (err) {
    // The parent names the last error of an instance that does not write again.
    const e = err as { code?: unknown; message?: unknown };
    process.send?.({ t: 'error', code: String(e.code ?? ''), message: String(e.message ?? err) });
    await sleep(20);
  }
}
await cluster.close();
process.exit(0);
