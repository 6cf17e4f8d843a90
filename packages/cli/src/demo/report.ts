/**
 * The demo's result: what `--json` prints and what the text summary renders. `invariants` are
 * the promises pgpulse makes (a broken one makes the exit code non-zero); `observations` are
 * what the run was meant to show, reported but not enforced.
 */
import type { FailoverReport, ReplayPauseReport, SlowQueryRun } from './faults.js';
import type { RoleTotals } from './metrics.js';
import type { OrmName } from './orm/types.js';
import type { LoadResult } from './schema.js';
import type { SlowQueryReport } from './slow-queries.js';
import type { ErrorSample, OrmTally, StaleRead } from './workload.js';

const n = (value: number) => value.toLocaleString('en-US');

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface DemoEvent {
  readonly atMs: number;
  readonly kind: string;
  readonly text: string;
}

export interface NodeSummary {
  readonly name: string;
  /** Role at the end of the run. */
  readonly role: string;
  readonly up: boolean;
  readonly reads: number;
  readonly writes: number;
  readonly errors: number;
}

/** The query result cache over the run (`cluster.cache.stats()` at the end). */
export interface CacheReport {
  readonly hits: number;
  readonly misses: number;
  /** Reads that asked for the cache and could not use it (in a transaction, ...). */
  readonly bypasses: number;
  readonly entries: number;
  readonly invalidations: number;
  /** hits / (hits + misses). */
  readonly hitRatio: number;
}

export interface DemoReport {
  readonly ok: boolean;
  readonly durationS: number;
  /** From start-up to the end of the checks. */
  readonly wallMs: number;
  readonly postgres: string;
  /** The sandbox's temp folder (removed at the end) and its nodes' ports. */
  readonly sandbox: { readonly dir: string; readonly ports: readonly number[] };
  readonly synchronousReplication: boolean;
  readonly faults: boolean;
  readonly load: LoadResult;
  readonly orms: readonly OrmName[];
  readonly skippedOrms: readonly { readonly name: OrmName; readonly reason: string }[];
  readonly workload: {
    readonly seconds: number;
    readonly requestsPerSec: number;
    readonly total: OrmTally;
    readonly byOrm: Readonly<Partial<Record<OrmName, OrmTally>>>;
    readonly errorSamples: readonly ErrorSample[];
  };
  readonly routing: {
    /** Statements per role of the serving node at the time. */
    readonly byRole: Readonly<Record<'primary' | 'replica', RoleTotals>>;
    /** Share of reads that replicas served. */
    readonly replicaReadShare: number;
    readonly byNode: readonly NodeSummary[];
    /** pgpulse's routing decisions by reason (`cluster.stats().routing`). */
    readonly byReason: Readonly<Record<string, number>>;
  };
  readonly replayPause: ReplayPauseReport | undefined;
  readonly failover: FailoverReport | undefined;
  readonly staleReads: {
    readonly count: number;
    readonly checks: number;
    readonly samples: readonly StaleRead[];
  };
  readonly writes: {
    readonly acknowledged: number;
    readonly lost: number;
    readonly missing: readonly string[];
    readonly failed: number;
    /** pgpulse's name of the node the check ran on (the final primary). */
    readonly verifiedOn: string;
  };
  readonly cash: { readonly expected: number; readonly actual: number };
  /** The latest-tick reads of every ORM go through pgpulse's query result cache. */
  readonly cache: CacheReport;
  readonly slowQueries: SlowQueryReport & { readonly scripted: SlowQueryRun | undefined };
  readonly invariants: readonly Check[];
  readonly observations: readonly Check[];
  readonly events: readonly DemoEvent[];
}

export type ReportBody = Omit<DemoReport, 'ok' | 'invariants' | 'observations'>;

/** Adds the checks and the overall verdict. */
export function judge(body: ReportBody): DemoReport {
  const { staleReads, writes, cash, failover, routing, replayPause, slowQueries } = body;
  const invariants: Check[] = [
    {
      name: 'no stale reads',
      ok: staleReads.count === 0,
      detail: `${n(staleReads.count)} stale of ${n(staleReads.checks)} read-after-write checks`,
    },
    {
      name: 'no acknowledged write lost',
      ok: writes.lost === 0,
      detail: `${n(writes.lost)} lost of ${n(writes.acknowledged)} acknowledged (checked on ${writes.verifiedOn})`,
    },
    {
      name: 'cash conserved',
      ok: cash.actual === cash.expected,
      detail: `${n(cash.actual)} of ${n(cash.expected)} cents across all accounts`,
    },
  ];
  if (body.faults) {
    invariants.push({
      name: 'writes resumed after failover',
      ok: failover?.firstWriteMs !== undefined,
      detail:
        failover?.firstWriteMs !== undefined
          ? `first write ${failover.firstWriteMs} ms after the kill, on ${failover.promoted}`
          : failover
            ? `no write succeeded after the kill${failover.error ? ` (${failover.error})` : ''}`
            : 'the primary was never killed',
    });
  }
  const replicaReads = routing.byRole.replica.reads;
  const observations: Check[] = [
    {
      name: 'replicas served reads',
      ok: replicaReads > 0,
      detail: `${Math.round(routing.replicaReadShare * 100)} % of reads (${n(replicaReads)})`,
    },
    {
      name: 'cache served reads',
      ok: body.cache.hits > 0,
      detail: `hit ratio ${(body.cache.hitRatio * 100).toFixed(1)} % (${n(body.cache.hits)} hits, ${n(body.cache.misses)} misses)`,
    },
  ];
  if (body.faults) {
    observations.push({
      name: 'lagging replica out and back',
      ok:
        replayPause?.leftRotationAfterMs !== undefined &&
        replayPause.rejoinedAfterMs !== undefined &&
        (replayPause.readsAfterRejoin ?? 0) > 0,
      detail: replayPause
        ? `${replayPause.node} out ${replayPause.leftRotationAfterMs ?? '-'} ms after the pause (${replayPause.readsWhileOut ?? '-'} reads while out), back ${replayPause.rejoinedAfterMs ?? '-'} ms after the resume`
        : 'replay was never paused',
    });
    const scan = slowQueries.entries.find((e) => e.findings.length > 0);
    observations.push({
      name: 'slow query plan and finding',
      ok: scan !== undefined,
      detail: scan
        ? `${scan.findings[0]?.message ?? ''}`
        : `${slowQueries.entries.length} slow statements, none with a finding`,
    });
  }
  return {
    ok: invariants.every((c) => c.ok),
    ...body,
    invariants,
    observations,
  };
}
