// A statement sent with pg's per-query `binary` has its values parsed from the binary format:
// its cached rows must never be served to the same text read as text (or the other way).
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { waitUntil } from '@pgpulse/sandbox/testing';
import type pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../packages/core/src/index.js';

let sandbox: SandboxCluster;
let cluster: Cluster;
beforeAll(async () => {
  sandbox = await startCluster({ replicas: 0 });
  cluster = createCluster({ primary: sandbox.primary.url, cache: { maxBytes: 1 << 20 } });
  await cluster.ready();
});
afterAll(async () => {
  await cluster?.close();
  await sandbox?.stop();
});

const TEXT = 'SELECT 1.5::numeric AS n WHERE $1::int = 1';

it('keys a binary read apart from the same text read as text', async () => {
  const asText = () => cluster.cached(() => cluster.pool.query(TEXT, [1]));
  const asBinary = () =>
    cluster.cached(() =>
      cluster.pool.query({ text: TEXT, values: [1], binary: true } as pg.QueryConfig),
    );
  // Stored once known current; from then on the text read hits.
  await waitUntil(async () => {
    await asText();
    return cluster.cache.stats().hits >= 1;
  });
  const text = (await asText()).rows[0] as { n: unknown };
  const binary = (await asBinary()).rows[0] as { n: unknown };
  expect(text.n).toBe('1.5'); // pg parses numeric text as a string
  expect(binary.n).not.toBe('1.5'); // binary numeric is parsed otherwise (pg's binary parser)
  expect(cluster.cache.stats().entries).toBeGreaterThanOrEqual(1);
});
