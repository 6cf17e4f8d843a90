#!/usr/bin/env node
// Starts a sandbox cluster and prints its URLs until Ctrl-C, for trying pgpulse by hand.
import { parseArgs } from 'node:util';
import { startCluster } from './index.js';

const { values } = parseArgs({
  options: {
    replicas: { type: 'string', default: '2' },
    synchronous: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

const t0 = performance.now();
const cluster = await startCluster({
  replicas: Number(values.replicas),
  synchronous: values.synchronous,
});
const ms = Math.round(performance.now() - t0);
if (values.json) {
  process.stdout.write(
    `${JSON.stringify({ primary: cluster.primary.url, replicas: cluster.replicas.map((r) => r.url) })}\n`,
  );
} else {
  process.stdout.write(
    `${cluster.version}: primary + ${cluster.replicas.length} replicas up in ${ms} ms\n\n`,
  );
  for (const node of cluster.all) process.stdout.write(`  ${node.name.padEnd(9)} ${node.url}\n`);
  process.stdout.write('\nPress Ctrl-C to stop and delete the cluster.\n');
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await cluster.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
