/**
 * What the workload asks of an ORM. Each ORM implements it with its own idiomatic API, wrapped
 * by its pgpulse adapter; none of them knows about replicas.
 */
export type OrmName = 'drizzle' | 'prisma' | 'typeorm';

/** How long the cached reads (latestTick) may be served. */
export const TICK_CACHE_TTL_MS = 5_000;

export interface TradeInput {
  readonly accountId: number;
  readonly symbol: string;
  readonly qty: number;
  /** numeric(12, 4) as text, so every ORM stores it exactly. */
  readonly price: string;
}

export interface Settlement {
  readonly buyer: number;
  readonly seller: number;
  /** Cents moved from the buyer to the seller. */
  readonly cents: number;
  readonly trade: TradeInput;
}

export interface OrmWorker {
  readonly name: OrmName;
  /**
   * Point read on market_data's primary key: the latest tick of a symbol. Through pgpulse's
   * query result cache, in each ORM's idiom (market_data is not written during the run).
   */
  latestTick(symbol: string): Promise<boolean>;
  /** Index range scan: a symbol's ticks in [from, to). Returns the row count. */
  ticks(symbol: string, from: Date, to: Date): Promise<number>;
  /** An account's latest trades (index on trades(account_id, created_at)). */
  recentTrades(accountId: number): Promise<number>;
  /** Inserts a trade; resolves with its id once the primary acknowledged it. */
  placeTrade(trade: TradeInput): Promise<string>;
  /** Reads one trade back by id. */
  findTrade(id: string): Promise<boolean>;
  /**
   * One transaction: lock both accounts `FOR UPDATE`, move the cash, record the trade. Resolves
   * with the trade id after COMMIT, or undefined when the buyer could not pay (nothing written).
   */
  settle(settlement: Settlement): Promise<string | undefined>;
  /** The unindexed scan: ticks with at least `minVolume`, newest first. */
  biggestPrints(minVolume: number): Promise<number>;
  close(): Promise<void>;
}
