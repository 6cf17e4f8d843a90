// pnpm bench:partition-migration — setupPartitioning({ migrate }) on a plain table (#14 item 7).
// A plain table of ROWS rows (default 1,000,000) over 30 days is converted to daily partitions
// through DatabaseOptimizationService while one writer inserts (ts = now(), one statement at a
// time on its own connection) the whole time. First the writer runs alone for BASELINE_S seconds
// (the baseline), then during the migration. Printed: rows lost (seeded + written, checked by
// (id, ts) after the swap: must be 0), the migration's time and phases, the writer's slowest
// insert (how long it was blocked) and its p50 / p99 against the baseline.

import { DatabaseOptimizationService } from '@pgpulse/core';
import { startCluster } from '@pgpulse/sandbox';
import pg from 'pg';

const ROWS = Number(process.env.ROWS ?? 1_000_000);
const BASELINE_S = Number(process.env.BASELINE_S ?? 10);
const BATCH = Number(process.env.BATCH ?? 10_000);

const keepAlive = setInterval(() => {}, 1000);
const sandbox = await startCluster({ replicas: 0 });

interface Phase {
  readonly latencies: number[];
  /** Date.now() at each insert's start, for placing the slow ones against the swap. */
  readonly startedAt: number[];
  readonly ids: string[];
  readonly ts: string[];
  errors: number;
}

/** The writer: inserts until `stop()`; each phase collects its own latencies. */
function writer(client: pg.Client) {
  let phase: Phase = { latencies: [], startedAt: [], ids: [], ts: [], errors: 0 };
  let running = true;
  const done = (async () => {
    while (running) {
      phase.startedAt.push(Date.now());
      const started = performance.now();
      try {
        const r = await client.query<{ id: string; ts: string }>(
          "INSERT INTO events (device, note) VALUES ($1, 'w') RETURNING id::text, ts::text",
          [phase.ids.length % 100],
        );
        phase.ids.push(r.rows[0]!.id);
        phase.ts.push(r.rows[0]!.ts);
      } catch {
        phase.errors++;
      }
      phase.latencies.push(performance.now() - started);
    }
  })();
  return {
    next(): Phase {
      const finished = phase;
      phase = { latencies: [], startedAt: [], ids: [], ts: [], errors: 0 };
      return finished;
    },
    async stop(): Promise<Phase> {
      running = false;
      await done;
      return phase;
    },
  };
}

const pct = (xs: readonly number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;
};
const ms = (n: number) => `${n.toFixed(1)} ms`;

try {
  const admin = new pg.Client({ connectionString: sandbox.primary.url });
  admin.on('error', () => {});
  await admin.connect();
  const loadStarted = performance.now();
  await admin.query(`
    CREATE TABLE events (
      id bigint GENERATED ALWAYS AS IDENTITY,
      ts timestamptz NOT NULL DEFAULT now(),
      device int NOT NULL,
      note text,
      PRIMARY KEY (id, ts)
    );
    INSERT INTO events (ts, device, note)
      SELECT now() - (g::float8 / ${ROWS}) * interval '30 days', g % 100, 'seed ' || g
        FROM generate_series(1, ${ROWS}) g;
    CREATE INDEX events_device ON events (device);`);
  await admin.query('VACUUM ANALYZE events');
  const tableBytes = Number(
    (await admin.query("SELECT pg_total_relation_size('events') AS b")).rows[0].b,
  );
  console.log(
    `loaded ${ROWS.toLocaleString('en')} rows (${(tableBytes / 2 ** 20).toFixed(0)} MiB with ` +
      `indexes) in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`,
  );

  const writerClient = new pg.Client({ connectionString: sandbox.primary.url });
  writerClient.on('error', () => {});
  await writerClient.connect();
  const writerPid = Number(
    (await writerClient.query('SELECT pg_backend_pid() AS pid')).rows[0].pid,
  );
  const w = writer(writerClient);
  await new Promise((r) => setTimeout(r, BASELINE_S * 1000));
  const baseline = w.next();

  const service = new DatabaseOptimizationService({
    primary: sandbox.primary.url,
    applicationName: 'bench-partition-migration',
    telemetry: { enabled: false },
    slowQuery: { explain: false },
  });
  await service.initialize();
  // What the writer's backend waits on, sampled every 2 ms while the migration runs: a lock
  // wait shows as wait_event_type 'Lock'.
  const waits = new Map<string, number>();
  let sampling = true;
  const monitor = new pg.Client({ connectionString: sandbox.primary.url });
  monitor.on('error', () => {});
  await monitor.connect();
  const sampler = (async () => {
    while (sampling) {
      const r = await monitor.query(
        "SELECT coalesce(wait_event_type || ':' || wait_event, 'running') AS w FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
        [writerPid],
      );
      const w = r.rows[0]?.w ?? 'idle (client side)';
      waits.set(w, (waits.get(w) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  const migrationStarted = performance.now();
  const result = await service.setupPartitioning(
    { table: 'events', column: 'ts', type: 'range', interval: 'daily', premake: 4 },
    { migrate: { batchSize: BATCH } },
  );
  const migrationMs = performance.now() - migrationStarted;
  sampling = false;
  await sampler;
  await monitor.end();
  // A second more on the partitioned table, counted with the migration phase.
  await new Promise((r) => setTimeout(r, 1000));
  const during = await w.stop();
  await writerClient.end();
  await service.close();

  // Rows lost: every seeded id, and every (id, ts) the writer was told about in both phases.
  const seededMissing = Number(
    (
      await admin.query(
        `SELECT $1::int - count(*) AS n FROM events WHERE id <= $1 AND note LIKE 'seed %'`,
        [ROWS],
      )
    ).rows[0].n,
  );
  const written = [...baseline.ids, ...during.ids];
  const writtenTs = [...baseline.ts, ...during.ts];
  const writtenMissing = Number(
    (
      await admin.query(
        `SELECT count(*) AS n FROM unnest($1::bigint[], $2::timestamptz[]) AS w(id, ts)
          WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = w.id AND e.ts = w.ts)`,
        [written, writtenTs],
      )
    ).rows[0].n,
  );
  const total = Number((await admin.query('SELECT count(*) AS n FROM events')).rows[0].n);
  await admin.end();

  const m = result.migration!;
  const parts = m.partitions.partitions;
  const sizes = parts.map((p) => p.bytes).sort((a, b) => a - b);
  console.log(
    `\nmigration: ${(migrationMs / 1000).toFixed(1)} s (copy of ${m.rowsRead.toLocaleString('en')} rows ` +
      `in ${m.batches} batches of ${BATCH}, ${m.rowsCopied.toLocaleString('en')} written by it, the ` +
      `others already there by the trigger); trigger creation ${ms(m.triggerLockMs)}, swap ${ms(m.swapMs)} ` +
      `(${m.swapAttempts} attempt(s))`,
  );
  console.log(
    `partitions: ${parts.length}, ${(m.partitions.totalBytes / 2 ** 20).toFixed(0)} MiB in all, ` +
      `each ${(sizes[0]! / 2 ** 10).toFixed(0)} KiB to ${(sizes[sizes.length - 1]! / 2 ** 20).toFixed(1)} MiB`,
  );
  console.log(
    `rows lost: ${seededMissing + writtenMissing} (seeded ${seededMissing}, written ${writtenMissing}); ` +
      `rows now ${total.toLocaleString('en')} = ${ROWS.toLocaleString('en')} + ${written.length.toLocaleString('en')} written`,
  );
  console.log(
    `writer errors: baseline ${baseline.errors}, during ${during.errors}\n\n` +
      '| writer insert        | inserts | p50      | p99      | max           |\n' +
      '| -------------------- | ------- | -------- | -------- | ------------- |\n' +
      `| baseline, ${BASELINE_S} s alone | ${baseline.latencies.length} | ${ms(pct(baseline.latencies, 0.5))} | ${ms(pct(baseline.latencies, 0.99))} | ${ms(baseline.latencies.reduce((a, b) => Math.max(a, b), 0))} |\n` +
      `| during the migration | ${during.latencies.length} | ${ms(pct(during.latencies, 0.5))} | ${ms(pct(during.latencies, 0.99))} | ${ms(during.latencies.reduce((a, b) => Math.max(a, b), 0))} |`,
  );
  // Which slow inserts overlapped the swap (held by its lock) and which did not (the machine).
  const swapEnd = m.swappedAt.getTime();
  const swapStart = swapEnd - m.swapMs;
  let inSwap = 0;
  let outside = 0;
  during.latencies.forEach((latency, i) => {
    const start = during.startedAt[i]!;
    const overlaps = start <= swapEnd + 1 && start + latency >= swapStart - 1;
    if (overlaps) inSwap = Math.max(inSwap, latency);
    else outside = Math.max(outside, latency);
  });
  console.log(
    `\nslowest insert overlapping the swap: ${ms(inSwap)}; slowest elsewhere during the ` +
      `migration: ${ms(outside)}`,
  );
  const samples = [...waits.values()].reduce((a, b) => a + b, 0);
  console.log(
    `the writer's backend during the migration (${samples} samples, every 2 ms): ` +
      [...waits.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([w, n]) => `${w} ${((n / samples) * 100).toFixed(1)} %`)
        .join(', '),
  );
  if (seededMissing + writtenMissing !== 0 || total !== ROWS + written.length) process.exitCode = 1;
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  clearInterval(keepAlive);
  await sandbox.stop();
}
