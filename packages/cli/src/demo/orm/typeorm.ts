/**
 * The workload through TypeORM 1.x, on a DataSource from `createPgPulseDataSource` of
 * @pgpulse/typeorm. Entities are `EntitySchema`s, so nothing depends on decorator metadata
 * (tsx and esbuild do not emit it).
 */
import type { Cluster } from '@pgpulse/core';
import { createPgPulseDataSource } from '@pgpulse/typeorm';
import { Between, EntitySchema, MoreThanOrEqual } from 'typeorm';
import { type OrmWorker, type Settlement, TICK_CACHE_TTL_MS } from './types.js';

interface Account {
  id: number;
  owner: string;
  balance: number;
}

interface MarketTick {
  symbol: string;
  ts: Date;
  price: string;
  volume: number;
}

interface Trade {
  /** bigint: TypeORM hands it back as a string. */
  id: string;
  accountId: number;
  symbol: string;
  qty: number;
  price: string;
  createdAt: Date;
}

const AccountEntity = new EntitySchema<Account>({
  name: 'Account',
  tableName: 'accounts',
  columns: {
    id: { type: 'int', primary: true },
    owner: { type: 'text' },
    balance: { type: 'int' },
  },
});

const MarketTickEntity = new EntitySchema<MarketTick>({
  name: 'MarketTick',
  tableName: 'market_data',
  columns: {
    symbol: { type: 'text', primary: true },
    ts: { type: 'timestamptz', primary: true },
    price: { type: 'numeric', precision: 12, scale: 4 },
    volume: { type: 'int' },
  },
});

const TradeEntity = new EntitySchema<Trade>({
  name: 'Trade',
  tableName: 'trades',
  columns: {
    id: { type: 'bigint', primary: true, generated: 'increment' },
    accountId: { type: 'int', name: 'account_id' },
    symbol: { type: 'text' },
    qty: { type: 'int' },
    price: { type: 'numeric', precision: 12, scale: 4 },
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
  },
});

export async function typeormWorker(cluster: Cluster): Promise<OrmWorker> {
  const dataSource = createPgPulseDataSource(cluster, {
    entities: [AccountEntity, MarketTickEntity, TradeEntity],
    synchronize: false,
    logging: false,
  });
  await dataSource.initialize();
  const ticks = dataSource.getRepository(MarketTickEntity);
  const tradeRepo = dataSource.getRepository(TradeEntity);

  const identifier = (value: unknown): string => {
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new Error('typeorm: INSERT returned no id');
    }
    return String(value);
  };

  return {
    name: 'typeorm',
    async latestTick(symbol) {
      // TypeORM's own cache option, served by pgpulse's query result cache.
      const row = await ticks.findOne({
        where: { symbol },
        order: { ts: 'DESC' },
        cache: { id: 'market_data', milliseconds: TICK_CACHE_TTL_MS },
      });
      return row !== null;
    },
    async ticks(symbol, from, to) {
      // Between is inclusive; the other ORMs scan [from, to), so stop 1 ms short.
      return (await ticks.findBy({ symbol, ts: Between(from, new Date(to.getTime() - 1)) })).length;
    },
    async recentTrades(accountId) {
      const rows = await tradeRepo.find({
        where: { accountId },
        order: { createdAt: 'DESC' },
        take: 10,
      });
      return rows.length;
    },
    async placeTrade(trade) {
      const result = await tradeRepo.insert(trade);
      return identifier(result.identifiers[0]?.id);
    },
    async findTrade(id) {
      return (await tradeRepo.findOneBy({ id })) !== null;
    },
    settle({ buyer, seller, cents, trade }: Settlement) {
      return dataSource.transaction(async (manager) => {
        const locked = await manager
          .createQueryBuilder(AccountEntity, 'a')
          .setLock('pessimistic_write')
          .where('a.id IN (:...ids)', { ids: [buyer, seller] })
          .orderBy('a.id')
          .getMany();
        const payer = locked.find((a) => a.id === buyer);
        if (!payer || payer.balance < cents) return undefined;
        await manager.decrement(AccountEntity, { id: buyer }, 'balance', cents);
        await manager.increment(AccountEntity, { id: seller }, 'balance', cents);
        const result = await manager.insert(TradeEntity, trade);
        return identifier(result.identifiers[0]?.id);
      });
    },
    async biggestPrints(minVolume) {
      const rows = await ticks.find({
        where: { volume: MoreThanOrEqual(minVolume) },
        order: { ts: 'DESC' },
        take: 50,
      });
      return rows.length;
    },
    async close() {
      // Leaves the cluster open (the demo closes it).
      await dataSource.destroy();
    },
  };
}
