/**
 * The workload through Prisma 7: the generated client (prisma/schema.prisma) on the driver
 * adapter from `pgpulseAdapter(cluster)`, extended by `withPgPulse` of @pgpulse/prisma.
 * Import it only after `ensurePrismaClient()` (prisma-client.ts) has generated the client.
 */
import type { Cluster } from '@pgpulse/core';
import { pgpulseAdapter, withPgPulse } from '@pgpulse/prisma';
import { PrismaClient } from '../generated/prisma/client.js';
import { type OrmWorker, type Settlement, TICK_CACHE_TTL_MS } from './types.js';

export function prismaWorker(cluster: Cluster): OrmWorker {
  const base = new PrismaClient({ adapter: pgpulseAdapter(cluster) });
  const prisma = withPgPulse(cluster, base);
  // The same client, its reads served from pgpulse's query result cache.
  const cached = prisma.$cached({ ttlMs: TICK_CACHE_TTL_MS, tags: ['market_data'] });

  return {
    name: 'prisma',
    async latestTick(symbol) {
      const row = await cached.marketData.findFirst({
        where: { symbol },
        orderBy: { ts: 'desc' },
      });
      return row !== null;
    },
    async ticks(symbol, from, to) {
      const rows = await prisma.marketData.findMany({
        where: { symbol, ts: { gte: from, lt: to } },
      });
      return rows.length;
    },
    async recentTrades(accountId) {
      const rows = await prisma.trade.findMany({
        where: { accountId },
        orderBy: { createdAt: 'desc' },
        take: 10,
      });
      return rows.length;
    },
    async placeTrade(trade) {
      const row = await prisma.trade.create({ data: trade, select: { id: true } });
      return row.id.toString();
    },
    async findTrade(id) {
      return (await prisma.trade.findUnique({ where: { id: BigInt(id) } })) !== null;
    },
    settle({ buyer, seller, cents, trade }: Settlement) {
      return prisma.$transaction(async (tx) => {
        // Prisma's query API has no locking clause: a raw SELECT ... FOR UPDATE, as Prisma's
        // documentation does it.
        const locked = await tx.$queryRaw<{ id: number; balance: number }[]>`
          SELECT id, balance FROM accounts WHERE id IN (${buyer}, ${seller}) ORDER BY id FOR UPDATE`;
        const payer = locked.find((a) => a.id === buyer);
        if (!payer || payer.balance < cents) return undefined;
        await tx.account.update({ where: { id: buyer }, data: { balance: { decrement: cents } } });
        await tx.account.update({ where: { id: seller }, data: { balance: { increment: cents } } });
        const row = await tx.trade.create({ data: trade, select: { id: true } });
        return row.id.toString();
      });
    },
    async biggestPrints(minVolume) {
      const rows = await prisma.marketData.findMany({
        where: { volume: { gte: minVolume } },
        orderBy: { ts: 'desc' },
        take: 50,
      });
      return rows.length;
    },
    async close() {
      // The adapter leaves the cluster open; the demo closes it.
      await prisma.$disconnect();
    },
  };
}
