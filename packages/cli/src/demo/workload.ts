/**
 * The mixed trading workload: a few concurrent request loops per ORM, each request in its own
 * `cluster.context()` as a web framework's middleware would run it. Reads, range scans,
 * inserts, `FOR UPDATE` transactions, and read-after-write checks: a trade that was just
 * acknowledged must be readable in the same request, wherever pgpulse routes the read. A miss
 * is a stale read.
 */
import type { Cluster } from '@pgpulse/core';
import type { OrmName, OrmWorker, TradeInput } from './orm/types.js';
import { ACCOUNTS, MARKET_START, SYMBOLS } from './schema.js';

export interface OrmTally {
  requests: number;
  reads: number;
  writes: number;
  /** Writes whose success the database confirmed (an id after INSERT, or after COMMIT). */
  acknowledged: number;
  /** Writes that failed: not acknowledged, so the client would retry them. */
  failedWrites: number;
  readAfterWriteChecks: number;
  staleReads: number;
  /** Settlements refused for lack of cash (committed, wrote nothing). */
  declined: number;
  errors: number;
}

export interface ErrorSample {
  readonly atMs: number;
  readonly orm: OrmName;
  readonly op: string;
  readonly message: string;
}

export interface StaleRead {
  readonly atMs: number;
  readonly orm: OrmName;
  readonly id: string;
}

/** A write the database acknowledged, for the end-of-run check that none was lost. */
export interface Acknowledged {
  readonly orm: OrmName;
  /** When the request that wrote it started and when its acknowledgement arrived (ms). */
  readonly startedMs: number;
  readonly ackedMs: number;
}

export interface WorkloadOptions {
  readonly cluster: Cluster;
  readonly workers: readonly OrmWorker[];
  /** Request loops per ORM. */
  readonly concurrency: number;
  /** Seconds of ticks per symbol in market_data. */
  readonly marketSeconds: number;
  /** The demo's clock (ms since it started). */
  readonly now: () => number;
  readonly onAck?: (ack: Acknowledged) => void;
  readonly onStale?: (stale: StaleRead) => void;
}

type Op = 'tick' | 'range' | 'recent' | 'lookup' | 'trade' | 'settle';

/** The request mix, in percent. */
const MIX: readonly (readonly [Op, number])[] = [
  ['tick', 30],
  ['range', 15],
  ['recent', 15],
  ['lookup', 10],
  ['trade', 20],
  ['settle', 10],
];

const MAX_ERROR_SAMPLES = 20;
const RECENT_IDS = 256;

export class Workload {
  readonly tallies = new Map<OrmName, OrmTally>();
  /** Acknowledged trade ids (as text) and which ORM wrote each. */
  readonly acknowledged = new Map<string, OrmName>();
  readonly errorSamples: ErrorSample[] = [];
  readonly staleReads: StaleRead[] = [];
  /** A ring of recently acknowledged ids, for lookups by other requests. */
  private readonly recentIds: string[] = [];
  private nextRecent = 0;
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly options: WorkloadOptions) {
    for (const worker of options.workers) this.tallies.set(worker.name, emptyTally());
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const worker of this.options.workers) {
      for (let i = 0; i < this.options.concurrency; i++) this.loops.push(this.loop(worker));
    }
  }

  /** Stops issuing requests and waits for those in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  total(): OrmTally {
    const sum = emptyTally();
    for (const tally of this.tallies.values()) {
      for (const key of Object.keys(sum) as (keyof OrmTally)[]) sum[key] += tally[key];
    }
    return sum;
  }

  private async loop(worker: OrmWorker): Promise<void> {
    const tally = this.tallies.get(worker.name)!;
    while (this.running) {
      const op = pick();
      const ok = await this.options.cluster.context(() => this.request(worker, tally, op));
      // Back off a little after a failure (a failover window) instead of spinning on errors.
      if (!ok) await sleep(25);
    }
  }

  /** One request; false when it failed. */
  private async request(worker: OrmWorker, tally: OrmTally, op: Op): Promise<boolean> {
    tally.requests++;
    const startedMs = this.options.now();
    let writing = op === 'trade' || op === 'settle';
    try {
      switch (op) {
        case 'tick':
          tally.reads++;
          await worker.latestTick(randomSymbol());
          return true;
        case 'range': {
          tally.reads++;
          const from = MARKET_START + randomInt(this.options.marketSeconds - 60) * 1000;
          await worker.ticks(randomSymbol(), new Date(from), new Date(from + 60_000));
          return true;
        }
        case 'recent':
          tally.reads++;
          await worker.recentTrades(1 + randomInt(ACCOUNTS));
          return true;
        case 'lookup': {
          // Another request reads a trade by id (no write of its own: any replica will do).
          tally.reads++;
          const id = this.recentIds[randomInt(this.recentIds.length)];
          if (id !== undefined) await worker.findTrade(id);
          return true;
        }
        case 'trade':
        case 'settle': {
          tally.writes++;
          const trade = randomTrade();
          let id: string | undefined;
          if (op === 'trade') {
            id = await worker.placeTrade(trade);
          } else {
            const seller = 1 + ((trade.accountId + randomInt(ACCOUNTS - 1)) % ACCOUNTS);
            id = await worker.settle({
              buyer: trade.accountId,
              seller,
              cents: 100 + randomInt(5_000),
              trade,
            });
          }
          if (id === undefined) {
            tally.declined++;
            return true;
          }
          const ack = { orm: worker.name, startedMs, ackedMs: this.options.now() };
          this.acknowledged.set(id, worker.name);
          this.recentIds[this.nextRecent++ % RECENT_IDS] = id;
          tally.acknowledged++;
          this.options.onAck?.(ack);
          // Read-after-write in the same request: must see the trade just written.
          writing = false;
          tally.reads++;
          tally.readAfterWriteChecks++;
          if (!(await worker.findTrade(id))) {
            tally.staleReads++;
            const stale = { atMs: Math.round(this.options.now()), orm: worker.name, id };
            this.staleReads.push(stale);
            this.options.onStale?.(stale);
          }
          return true;
        }
      }
    } catch (err) {
      tally.errors++;
      if (writing) tally.failedWrites++;
      if (this.errorSamples.length < MAX_ERROR_SAMPLES) {
        this.errorSamples.push({
          atMs: Math.round(this.options.now()),
          orm: worker.name,
          op,
          message: describeError(err),
        });
      }
      return false;
    }
  }
}

/** First line of an error, its cause first (drizzle wraps the driver's error as `cause`). */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const first = err.message.split('\n')[0] ?? err.message;
  const cause = err.cause instanceof Error ? err.cause.message.split('\n')[0] : undefined;
  return cause && !first.includes(cause) ? `${cause} (${first})` : first;
}

function emptyTally(): OrmTally {
  return {
    requests: 0,
    reads: 0,
    writes: 0,
    acknowledged: 0,
    failedWrites: 0,
    readAfterWriteChecks: 0,
    staleReads: 0,
    declined: 0,
    errors: 0,
  };
}

function pick(): Op {
  let roll = Math.random() * 100;
  for (const [op, weight] of MIX) {
    roll -= weight;
    if (roll < 0) return op;
  }
  return 'tick';
}

function randomInt(below: number): number {
  return Math.floor(Math.random() * Math.max(1, below));
}

function randomSymbol(): string {
  return SYMBOLS[randomInt(SYMBOLS.length)]!;
}

function randomTrade(): TradeInput {
  return {
    accountId: 1 + randomInt(ACCOUNTS),
    symbol: randomSymbol(),
    qty: 1 + randomInt(500),
    price: (20 + Math.random() * 180).toFixed(4),
  };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
