// The fleet harness: N app instances as separate processes over one sandbox, the primary
// killed round after round (survivors re-pointed at the new primary between rounds), with or
// without failover.coordinator. Checks per round: exactly one writable node, every write
// acknowledged after the kill acknowledged by that node, and the time to each instance's first
// write after the kill. Used by bench/fleet.ts (large) and test/fleet-processes.test.ts (small).
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep, waitUntil } from '@pgpulse/sandbox/testing';

export interface FleetOptions {
  readonly instances: number;
  readonly rounds: number;
  /** etcd endpoint for failover.coordinator; none: automatic without a coordinator. */
  readonly etcd?: string;
  readonly intervalMs?: number;
  readonly log?: (line: string) => void;
}

export interface RoundResult {
  readonly round: number;
  readonly killed: string;
  /** Writable nodes found after the kill (must be exactly 1). */
  readonly primaries: readonly string[];
  /**
   * Writes acknowledged after the kill by a node that is neither the one primary nor the killed
   * one (must be 0).
   */
  readonly strayAcks: number;
  /** Acknowledged by the killed primary between the kill signal and its death (not a stray). */
  readonly dyingAcks: number;
  readonly acksAfterKill: number;
  /** Max over instances of kill → first acknowledged write (ms). */
  readonly firstWriteMaxMs: number;
  readonly firstWriteMedianMs: number;
  readonly splitBrainEvents: number;
}

interface Worker {
  readonly child: ChildProcess;
  readonly instance: number;
  acks: { seq: number; port: number; at: number }[];
  ready: boolean;
  /** The last failed write, for the message when an instance does not write again. */
  lastError?: { code: string; message: string; at: number };
  /** The last failover-failed event: why this instance did not promote. */
  lastFailover?: { code: string; message: string; at: number };
  exit?: string;
}

const WORKER = fileURLToPath(new URL('./fleet-worker.ts', import.meta.url));

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export async function runFleet(options: FleetOptions): Promise<RoundResult[]> {
  const interval = options.intervalMs ?? 100;
  const log = options.log ?? (() => {});
  const sandbox: SandboxCluster = await startCluster({
    replicas: options.rounds + 1,
    settings: { max_wal_senders: Math.max(10, options.rounds + 4) },
  });
  const workers: Worker[] = [];
  let splitBrains = 0;
  try {
    await sandbox.query(
      'primary',
      'CREATE TABLE fleet_writes (instance int, seq int, PRIMARY KEY (instance, seq))',
    );
    await sandbox.waitForReplay();
    const names = sandbox.all.map((n) => n.name);
    for (let i = 0; i < options.instances; i++) {
      const order = shuffled(names.filter((n) => n !== 'primary'));
      const config = {
        primary: { host: '127.0.0.1', port: sandbox.node('primary').port, user: 'postgres' },
        replicas: order.map((name) => ({
          host: '127.0.0.1',
          port: sandbox.node(name).port,
          user: 'postgres',
          name: `n-${name}`,
        })),
        health: {
          intervalMs: interval + Math.floor(Math.random() * 40),
          timeoutMs: 1000,
          maxConsecutiveFailures: 2,
        },
        pool: { maxSize: 2, acquireTimeoutMs: 2000, connectTimeoutMs: 1000 },
        failover: {
          promotion: 'automatic' as const,
          ...(options.etcd
            ? {
                coordinator: {
                  type: 'etcd' as const,
                  endpoints: [options.etcd],
                  leaseTtlSeconds: 5,
                  timeoutMs: 1500,
                },
              }
            : {}),
        },
      };
      const args = { instance: i, phaseMs: Math.floor(Math.random() * interval), config };
      const child = fork(WORKER, [JSON.stringify(args)], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      const worker: Worker = { instance: i, child, acks: [], ready: false };
      child.on(
        'message',
        (m: {
          t: string;
          seq: number;
          port: number;
          at: number;
          code: string;
          message: string;
        }) => {
          if (m.t === 'ack') worker.acks.push({ seq: m.seq, port: m.port, at: m.at });
          else if (m.t === 'ready') worker.ready = true;
          else if (m.t === 'split-brain') splitBrains++;
          else if (m.t === 'error')
            worker.lastError = { code: m.code, message: m.message, at: Date.now() };
          else if (m.t === 'failover-failed')
            worker.lastFailover = { code: m.code, message: m.message, at: Date.now() };
        },
      );
      child.on('exit', (code, signal) => {
        worker.exit = signal ?? `exit code ${code}`;
      });
      // A worker that dies early must not kill the harness with ERR_IPC_CHANNEL_CLOSED.
      child.on('error', () => {});
      workers.push(worker);
    }
    const results: RoundResult[] = [];
    let primary = 'primary';
    const alive = new Set(names);
    for (let round = 1; round <= options.rounds; round++) {
      const port = sandbox.node(primary).port;
      // Every instance writes to the current primary before the kill.
      const since = Date.now();
      await until(
        () => workers.every((w) => w.ready && w.acks.some((a) => a.at >= since && a.port === port)),
        // The first round includes every process's start-up (tsx compiles; 2 shared cores).
        round === 1 ? 300_000 : 60_000,
        'every instance writing to the primary',
      );
      const splitBefore = splitBrains;
      const killAt = Date.now();
      await sandbox.kill(primary);
      alive.delete(primary);
      // Every instance writes again, on a node other than the killed one.
      const writingAgain = (w: Worker) => w.acks.some((a) => a.at > killAt && a.port !== port);
      await until(
        () => workers.every(writingAgain),
        30_000,
        'every instance writing again after the kill',
        () =>
          stuck(
            workers.filter((w) => !writingAgain(w)),
            killAt,
          ),
      );
      await sleep(500);
      const primaries: string[] = [];
      for (const name of alive) {
        const [row] = await sandbox.query<{ r: boolean }>(name, 'SELECT pg_is_in_recovery() AS r');
        if (row && !row.r) primaries.push(name);
      }
      const winner = primaries[0] ?? '';
      const winnerPort = winner ? sandbox.node(winner).port : -1;
      const firsts: number[] = [];
      let stray = 0;
      let dying = 0;
      let after = 0;
      for (const w of workers) {
        const later = w.acks.filter((a) => a.at > killAt);
        after += later.length;
        stray += later.filter((a) => a.port !== winnerPort && a.port !== port).length;
        dying += later.filter((a) => a.port === port).length;
        firsts.push(
          Math.min(...later.filter((a) => a.port === winnerPort).map((a) => a.at)) - killAt,
        );
        w.acks = w.acks.filter((a) => a.at > killAt);
      }
      firsts.sort((a, b) => a - b);
      const result: RoundResult = {
        round,
        killed: primary,
        primaries,
        strayAcks: stray,
        dyingAcks: dying,
        acksAfterKill: after,
        firstWriteMaxMs: firsts[firsts.length - 1] ?? Number.NaN,
        firstWriteMedianMs: firsts[Math.floor(firsts.length / 2)] ?? Number.NaN,
        splitBrainEvents: splitBrains - splitBefore,
      };
      results.push(result);
      log(
        `round ${round}: killed ${primary}; primaries ${primaries.join(',') || '(none)'}; ` +
          `acks after kill ${after}, on another node ${stray} (by the dying primary ${dying}); first write on the new primary max ${result.firstWriteMaxMs} ms, ` +
          `median ${result.firstWriteMedianMs} ms; split-brain events ${result.splitBrainEvents}`,
      );
      if (primaries.length !== 1) break;
      // The HA part pgpulse does not do: re-point the surviving standbys at the new primary.
      for (const name of alive) if (name !== winner) await sandbox.follow(name, winner);
      await standbysSettled(
        sandbox,
        winner,
        [...alive].filter((n) => n !== winner),
      );
      // Each instance judges a standby by the timeline its probes last saw: killed before they
      // saw the re-pointed standbys on the new timeline, every instance rightly refuses to
      // promote ("no reachable standby on the current timeline"; 2 of 8 small runs did).
      // Ten probe intervals of every instance's own writing after that, so each has probed.
      const settled = Date.now() + 10 * (interval + 40);
      await until(
        () => workers.every((w) => w.acks.some((a) => a.at >= settled)),
        60_000,
        'every instance writing for ten probe intervals after the standbys were re-pointed',
      );
      primary = winner;
    }
    return results;
  } finally {
    for (const w of workers) w.child.send?.({ t: 'stop' });
    await sleep(300);
    for (const w of workers) w.child.kill('SIGKILL');
    await sandbox.stop();
  }
}

/** Waits until every standby streams the new primary's timeline (what an HA manager ensures). */
async function standbysSettled(
  sandbox: SandboxCluster,
  primary: string,
  standbys: readonly string[],
): Promise<void> {
  const [row] = await sandbox.query<{ tli: number }>(
    primary,
    "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli",
  );
  const timeline = row?.tli;
  for (const name of standbys) {
    await waitUntil(
      async () => {
        const [r] = await sandbox.query<{ tli: number | null }>(
          name,
          'SELECT received_tli AS tli FROM pg_stat_wal_receiver',
        );
        return r?.tli === timeline;
      },
      { timeoutMs: 30_000, intervalMs: 20, message: `fleet: ${name} not on timeline ${timeline}` },
    );
  }
}

async function until(
  check: () => boolean,
  timeoutMs: number,
  what: string,
  detail: () => string = () => '',
): Promise<void> {
  try {
    await waitUntil(check, { timeoutMs, intervalMs: 20, message: `fleet: no ${what}` });
  } catch (err) {
    const more = detail();
    throw more ? new Error(`${(err as Error).message}: ${more}`, { cause: err }) : err;
  }
}

/** Which instances are not writing, and why as far as they said. */
function stuck(workers: readonly Worker[], since: number): string {
  return workers
    .map((w) => {
      const last = w.acks.at(-1);
      const error = w.lastError
        ? `last error ${w.lastError.at - since} ms after the kill: ${w.lastError.code} ${w.lastError.message.slice(0, 200)}`
        : 'no error reported';
      const failover = w.lastFailover
        ? `; last failover-failed ${w.lastFailover.at - since} ms after the kill: ${w.lastFailover.message.slice(0, 200)}`
        : '';
      return `instance ${w.instance} (${w.exit ?? 'running'}; last ack ${last ? `${last.at - since} ms, port ${last.port}` : 'none'}; ${error}${failover})`;
    })
    .join('; ');
}
