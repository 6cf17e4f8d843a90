/** The workload through drizzle-orm, wrapped with `withPgPulse` from @pgpulse/drizzle. */
import type { Cluster } from '@pgpulse/core';
import { withPgPulse } from '@pgpulse/drizzle';
import { and, desc, eq, gte, inArray, lt, sql } from 'drizzle-orm';
import {
  bigint,
  index,
  integer,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';
import { type OrmWorker, type Settlement, TICK_CACHE_TTL_MS, type TradeInput } from './types.js';

export const accounts = pgTable('accounts', {
  id: integer('id').primaryKey(),
  owner: text('owner').notNull(),
  balance: integer('balance').notNull(),
});

export const marketData = pgTable(
  'market_data',
  {
    symbol: text('symbol').notNull(),
    ts: timestamp('ts', { withTimezone: true }).notNull(),
    price: numeric('price', { precision: 12, scale: 4 }).notNull(),
    volume: integer('volume').notNull(),
  },
  (t) => [primaryKey({ columns: [t.symbol, t.ts] })],
);

export const trades = pgTable(
  'trades',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    accountId: integer('account_id')
      .notNull()
      .references(() => accounts.id),
    symbol: text('symbol').notNull(),
    qty: integer('qty').notNull(),
    price: numeric('price', { precision: 12, scale: 4 }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('trades_account_id_created_at_idx').on(t.accountId, t.createdAt.desc())],
);

const schema = { accounts, marketData, trades };

export function drizzleWorker(cluster: Cluster): OrmWorker {
  const db = withPgPulse(cluster, { schema });
  // The same database, its reads served from pgpulse's query result cache.
  const cached = db.$cached({ ttlMs: TICK_CACHE_TTL_MS, tags: ['market_data'] });

  const insertTrade = async (
    runner: Pick<typeof db, 'insert'>,
    trade: TradeInput,
  ): Promise<string> => {
    const [row] = await runner.insert(trades).values(trade).returning({ id: trades.id });
    if (!row) throw new Error('drizzle: INSERT ... RETURNING returned no row');
    return String(row.id);
  };

  return {
    name: 'drizzle',
    async latestTick(symbol) {
      const rows = await cached
        .select({ price: marketData.price, ts: marketData.ts })
        .from(marketData)
        .where(eq(marketData.symbol, symbol))
        .orderBy(desc(marketData.ts))
        .limit(1);
      return rows.length === 1;
    },
    async ticks(symbol, from, to) {
      const rows = await db
        .select()
        .from(marketData)
        .where(and(eq(marketData.symbol, symbol), gte(marketData.ts, from), lt(marketData.ts, to)));
      return rows.length;
    },
    async recentTrades(accountId) {
      const rows = await db.query.trades.findMany({
        where: eq(trades.accountId, accountId),
        orderBy: desc(trades.createdAt),
        limit: 10,
      });
      return rows.length;
    },
    placeTrade: (trade) => insertTrade(db, trade),
    async findTrade(id) {
      const row = await db.query.trades.findFirst({ where: eq(trades.id, Number(id)) });
      return row !== undefined;
    },
    settle({ buyer, seller, cents, trade }: Settlement) {
      return db.transaction(async (tx) => {
        const locked = await tx
          .select({ id: accounts.id, balance: accounts.balance })
          .from(accounts)
          .where(inArray(accounts.id, [buyer, seller]))
          .orderBy(accounts.id)
          .for('update');
        const payer = locked.find((a) => a.id === buyer);
        if (!payer || payer.balance < cents) return undefined;
        await tx
          .update(accounts)
          .set({ balance: sql`${accounts.balance} - ${cents}` })
          .where(eq(accounts.id, buyer));
        await tx
          .update(accounts)
          .set({ balance: sql`${accounts.balance} + ${cents}` })
          .where(eq(accounts.id, seller));
        return insertTrade(tx, trade);
      });
    },
    async biggestPrints(minVolume) {
      const rows = await db
        .select()
        .from(marketData)
        .where(gte(marketData.volume, minVolume))
        .orderBy(desc(marketData.ts))
        .limit(50);
      return rows.length;
    },
    async close() {
      // The cluster belongs to the demo; it closes it once every ORM is done.
    },
  };
}
