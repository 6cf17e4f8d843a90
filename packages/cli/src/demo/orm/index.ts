/**
 * The ORMs of the workload, each on the same pgpulse cluster through its adapter. Prisma is
 * loaded only once its client is generated; if it cannot load, the demo runs without it and
 * says why.
 */
import type { Cluster } from '@pgpulse/core';
import { errorText } from '../faults.js';
import { drizzleWorker } from './drizzle.js';
import { typeormWorker } from './typeorm.js';
import type { OrmName, OrmWorker } from './types.js';

export type { OrmName, OrmWorker } from './types.js';

export async function createWorkers(
  cluster: Cluster,
  prismaReady: boolean,
  skipped: { name: OrmName; reason: string }[],
): Promise<OrmWorker[]> {
  const workers: OrmWorker[] = [drizzleWorker(cluster)];
  if (prismaReady) {
    try {
      const { prismaWorker } = await import('./prisma.js');
      workers.push(prismaWorker(cluster));
    } catch (error) {
      skipped.push({ name: 'prisma', reason: errorText(error) });
    }
  }
  workers.push(await typeormWorker(cluster));
  return workers;
}
