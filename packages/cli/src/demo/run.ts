/**
 * `pgpulse demo`: a real primary + 2 synchronous replicas, a trading schema, a mixed workload
 * through drizzle, Prisma and TypeORM on pgpulse, scripted faults, a live view and a summary
 * whose invariants are checked on PostgreSQL itself.
 */
import {
  type CacheStats,
  type Cluster,
  createCluster,
  type DashboardServer,
  PgPulseError,
  serveDashboard,
} from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { DEFAULT_DURATION_S } from './durations.js';
import { logClusterEvents } from './events.js';
import { errorText, FaultScript, faultPlan, SLOW_QUERY_PATTERN } from './faults.js';
import { StatsSampler } from './metrics.js';
import { createWorkers } from './orm/index.js';
import type { OrmName, OrmWorker } from './orm/types.js';
import { ensurePrismaClient } from './prisma-client.js';
import {
  type CacheReport,
  type DemoEvent,
  type DemoReport,
  judge,
  type NodeSummary,
} from './report.js';
import { loadSchema, marketSeconds } from './schema.js';
import { readSlowQueries, waitForPlan } from './slow-queries.js';
import { verify } from './verify.js';
import { LiveView, type ViewMode } from './view.js';
import { sleep, Workload } from './workload.js';

export interface DemoOptions {
  /** Seconds of workload (default 30). */
  readonly durationS?: number;
  /** Run the fault script (default true). */
  readonly faults?: boolean;
  readonly mode?: ViewMode;
  readonly color?: boolean;
  readonly out?: NodeJS.WritableStream;
  readonly err?: NodeJS.WritableStream;
  /** Rows of market_data (default 400 000: enough for a scan pgpulse calls slow). */
  readonly marketRows?: number;
  /** Request loops per ORM (default 3). */
  readonly concurrency?: number;
  /** Ctrl-C: stops the run early; the report is then not meaningful. */
  readonly signal?: AbortSignal;
}

/** pgpulse's settings for the demo: fast probes so a 10 s run shows a failover. */
function pgpulseConfig(sandbox: SandboxCluster) {
  return {
    primary: sandbox.primary.url,
    replicas: sandbox.replicas.map((r) => r.url),
    applicationName: 'pgpulse-demo',
    pool: { maxSize: 10, acquireTimeoutMs: 5_000 },
    health: { intervalMs: 200, timeoutMs: 1_000, maxConsecutiveFailures: 2 },
    // A replica more than 500 ms behind stops serving reads until it is back under 400 ms.
    replicaLag: { maxLagMs: 500, policy: 'fallback' as const },
    // pgpulse promotes the most advanced replica itself (single-instance set-up); writes wait
    // up to 10 s for the new primary instead of failing.
    failover: { promotion: 'automatic' as const, writeWaitMs: 10_000 },
    slowQuery: { thresholdMs: 20, explain: true },
    // The query result cache: each ORM reads the latest tick through it (market_data is not
    // written during the run). Read-after-write checks do not ask for it.
    cache: { maxBytes: 16 * 1024 * 1024, defaultTtlMs: 5_000 },
    // Alerts for the dashboard: the scripted replay pause and the killed primary fire them.
    monitoring: {
      intervalMs: 1_000,
      cooldownMs: 5_000,
      thresholds: { replicationLagMs: 500 },
    },
  };
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const started = performance.now();
  // The run's clock: ms since start-up, then since the workload started (events, fault times).
  let epoch = started;
  const now = () => performance.now() - epoch;
  const durationS = options.durationS ?? DEFAULT_DURATION_S;
  const faults = options.faults ?? true;
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  const mode = options.mode ?? 'lines';
  const signal = options.signal ?? new AbortController().signal;
  const view = new LiveView(mode, out, err, options.color ?? false);
  const s = view.style;
  const events: DemoEvent[] = [];
  const log = (kind: string, text: string) => {
    const atMs = Math.round(now());
    events.push({ atMs, kind, text });
    view.event(atMs, kind, text);
  };

  let sandbox: SandboxCluster | undefined;
  let cluster: Cluster | undefined;
  let sampler: StatsSampler | undefined;
  let dashboard: DashboardServer | undefined;
  const workers: OrmWorker[] = [];
  try {
    // The Prisma client is generated from prisma/schema.prisma on first use.
    const skippedOrms: { name: OrmName; reason: string }[] = [];
    let prismaReady = false;
    try {
      if (ensurePrismaClient()) view.line(s.dim('generated the Prisma client (first run)'));
      prismaReady = true;
    } catch (error) {
      skippedOrms.push({ name: 'prisma', reason: errorText(error) });
    }

    const sandboxStarted = performance.now();
    sandbox = await startCluster({
      replicas: 2,
      synchronous: true,
      // Three servers share a laptop's cores: parallel workers would only contend (and make
      // the slow scan's plan harder to read).
      settings: { max_parallel_workers_per_gather: 0 },
    });
    view.line(
      `${s.bold('pgpulse demo')}: ${sandbox.version}, primary + ${sandbox.replicas.length} synchronous streaming replicas ` +
        `on 127.0.0.1:${sandbox.all.map((n) => n.port).join(',')} (up in ${Math.round(performance.now() - sandboxStarted)} ms)`,
    );
    const marketRows = options.marketRows ?? 400_000;
    const load = await loadSchema(sandbox, marketRows, ({ table, done, total }) =>
      view.progress(`loading ${table}`, done, total, `${done.toLocaleString('en-US')} rows`),
    );
    view.line(
      s.dim(
        `loaded ${load.marketRows.toLocaleString('en-US')} market_data rows and ${load.accounts} accounts in ${load.ms} ms`,
      ),
    );
    if (signal.aborted) throw new DemoInterruptedError();

    cluster = createCluster(pgpulseConfig(sandbox));
    const c = cluster;
    await c.ready();
    logClusterEvents(c, log, c.config.replicaLag.maxLagMs);
    c.on('alert', (alert) => log('alert', `${alert.state}: ${alert.message}`));
    // The live page, on loopback only; it closes with the demo.
    dashboard = await serveDashboard(c, { intervalMs: 500, catalogEveryMs: 5_000 });
    view.line(`${s.bold('dashboard')}: ${dashboard.url} (live while the demo runs)`);
    if (mode === 'json') err.write(`pgpulse demo dashboard: ${dashboard.url}\n`);
    workers.push(...(await createWorkers(c, prismaReady, skippedOrms)));
    for (const skipped of skippedOrms) log('error', `${skipped.name} skipped: ${skipped.reason}`);

    const script = faults
      ? new FaultScript({ sandbox, cluster: c, reporter: workers[0]!, now, log })
      : undefined;
    const workload = new Workload({
      cluster: c,
      workers,
      concurrency: options.concurrency ?? 3,
      marketSeconds: marketSeconds(marketRows),
      now,
      ...(script ? { onAck: script.onAck } : {}),
      onStale: (stale) => log('stale', `${stale.orm} could not read back trade ${stale.id}`),
    });

    const durationMs = durationS * 1000;
    let lastRequests = new Map<OrmName, number>();
    let lastAt = performance.now();
    sampler = new StatsSampler(c, 250, (rows) => {
      const at = performance.now();
      const seconds = Math.max(0.001, (at - lastAt) / 1000);
      const orms = workers.map((w) => {
        const requests = workload.tallies.get(w.name)?.requests ?? 0;
        return {
          name: w.name,
          perSec: Math.round((requests - (lastRequests.get(w.name) ?? 0)) / seconds),
        };
      });
      lastRequests = new Map(
        workers.map((w) => [w.name, workload.tallies.get(w.name)?.requests ?? 0]),
      );
      lastAt = at;
      const total = workload.total();
      view.update({
        elapsedMs: Math.min(durationMs, Math.max(0, now())),
        durationMs,
        nodes: rows,
        orms,
        staleReads: total.staleReads,
        acknowledged: total.acknowledged,
        failedWrites: total.failedWrites,
        cache: c.cache.stats(),
      });
    });

    epoch = performance.now();
    log(
      'start',
      `${workers.length} ORMs × ${options.concurrency ?? 3} request loops for ${durationS} s, each request in cluster.context()`,
    );
    sampler.start();
    workload.start();
    const stopScript = new AbortController();
    const onAbort = () => stopScript.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const scripted = script?.run(faultPlan(durationMs), 0, stopScript.signal);
    await sleep(durationMs, signal);
    stopScript.abort();
    signal.removeEventListener('abort', onAbort);
    if (signal.aborted) {
      // Ctrl-C: do not wait for requests that wait for a primary; closing the cluster ends them.
      void workload.stop();
      throw new DemoInterruptedError();
    }
    await scripted;
    await workload.stop();
    const workloadSeconds = now() / 1000;
    await script?.finish(15_000);
    sampler.stop();
    view.stop();
    log('stop', 'workload stopped; checking the results on PostgreSQL directly');

    // Invariants, checked on the servers, not through pgpulse.
    const checked = await verify(sandbox, [...workload.acknowledged.keys()]);
    const slow = faults ? await waitForPlan(c, SLOW_QUERY_PATTERN, 3_000) : readSlowQueries(c);

    const stats = c.stats();
    const byNode: NodeSummary[] = stats.nodes.map((n) => ({
      name: n.name,
      role: n.role,
      up: n.up,
      reads: n.counters.reads,
      writes: n.counters.writes,
      errors: n.counters.errors,
    }));
    const byRole = sampler.byRole;
    const totalReads = byRole.primary.reads + byRole.replica.reads;
    const verifiedPort = checked.primary ? sandbox.node(checked.primary).port : undefined;
    const total = workload.total();
    const byOrm: Partial<Record<OrmName, typeof total>> = {};
    for (const [name, tally] of workload.tallies) byOrm[name] = { ...tally };
    return judge({
      durationS,
      wallMs: Math.round(performance.now() - started),
      postgres: sandbox.version,
      sandbox: { dir: sandbox.dir, ports: sandbox.all.map((n) => n.port) },
      synchronousReplication: true,
      faults,
      load,
      orms: workers.map((w) => w.name),
      skippedOrms,
      workload: {
        seconds: Math.round(workloadSeconds * 10) / 10,
        requestsPerSec: Math.round(total.requests / workloadSeconds),
        total,
        byOrm,
        errorSamples: workload.errorSamples,
      },
      routing: {
        byRole,
        replicaReadShare: totalReads > 0 ? byRole.replica.reads / totalReads : 0,
        byNode,
        byReason: stats.routing,
      },
      replayPause: script?.replayPause,
      failover: script?.failover,
      staleReads: {
        count: total.staleReads,
        checks: total.readAfterWriteChecks,
        samples: workload.staleReads.slice(0, 10),
      },
      writes: {
        acknowledged: checked.acknowledged,
        lost: checked.lost,
        missing: checked.missing,
        failed: total.failedWrites,
        verifiedOn:
          c.nodes.find((n) => n.port === verifiedPort)?.name ??
          `nothing (${checked.error ?? 'no primary'})`,
      },
      cash: checked.cash,
      cache: cacheReport(c.cache.stats()),
      slowQueries: { ...slow, scripted: script?.slowQuery },
      events,
    });
  } finally {
    sampler?.stop();
    view.stop();
    await withTimeout(
      dashboard?.close().catch(() => {}),
      2_000,
    );
    await withTimeout(Promise.allSettled(workers.map((w) => w.close())), 5_000);
    await withTimeout(
      cluster?.close().catch(() => {}),
      10_000,
    );
    await sandbox?.stop().catch(() => sandbox?.disposeSync());
  }
}

/** The query result cache's figures for the report (`cluster.cache.stats()`). */
function cacheReport(stats: CacheStats): CacheReport {
  const { hits, misses, bypasses, entries, invalidations, hitRatio } = stats;
  return { hits, misses, bypasses, entries, invalidations, hitRatio };
}

/** The demo was stopped (Ctrl-C or its abort signal) before its run ended. */
export class DemoInterruptedError extends PgPulseError {
  constructor() {
    super('PGPULSE_DEMO_INTERRUPTED', 'interrupted: the demo was stopped before its run ended');
  }
}

/** Waits for `promise`, but no longer than `ms` (clean-up must not hang on a dead node). */
async function withTimeout(promise: Promise<unknown> | undefined, ms: number): Promise<void> {
  const timeout = new AbortController();
  await Promise.race([promise, sleep(ms, timeout.signal)]);
  timeout.abort();
}
