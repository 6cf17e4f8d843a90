import { type Cluster, createCluster } from '@pgpulse/core';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep } from '@pgpulse/sandbox/testing';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgPulseDataSource } from './index.js';

// #22 item 5: the pinned client forwards 'error' and 'end' like a pg.Client, so TypeORM sees
// its own error when the server ends a session in a transaction (idle_in_transaction_session_timeout).

let sandbox: SandboxCluster;
let cluster: Cluster | undefined;

beforeAll(async () => {
  sandbox = await startCluster({ replicas: 1 });
  await sandbox.query('primary', 'CREATE TABLE IF NOT EXISTS pin_events (id int)');
  await sandbox.waitForReplay();
}, 60_000);

afterAll(async () => {
  await cluster?.close();
  await sandbox?.stop();
});

/** What TypeORM reports when the server kills a connection idle in a transaction. */
async function killedInTransaction(ds: DataSource): Promise<unknown> {
  const runner = ds.createQueryRunner('master');
  await runner.connect();
  await runner.startTransaction();
  await runner.query('INSERT INTO pin_events VALUES (1)');
  await sleep(1_200); // idle_in_transaction_session_timeout is 300 ms
  try {
    await runner.query('SELECT 1');
    return undefined;
  } catch (err) {
    return err;
  } finally {
    await runner.release().catch(() => {});
  }
}

describe('a session killed in a transaction (#22 item 5)', () => {
  it('TypeORM sees its own QueryRunnerAlreadyReleasedError, as on plain pg, when the server kills the session', async () => {
    const settings = { idle_in_transaction_session_timeout: 300 };
    // Baseline: TypeORM on plain pg against the same server.
    const plain = await new DataSource({
      type: 'postgres',
      url: sandbox.primary.url,
      extra: { options: '-c idle_in_transaction_session_timeout=300' },
    }).initialize();
    const baseline = await killedInTransaction(plain);
    await plain.destroy();

    cluster = createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      settings,
    });
    const ds = await createPgPulseDataSource(cluster, { synchronize: false }).initialize();
    const viaPgPulse = await killedInTransaction(ds);
    await ds.destroy();
    console.log(
      `killed in a transaction: pg → ${(baseline as Error)?.name}, pgpulse → ${(viaPgPulse as Error)?.name}`,
    );
    expect((baseline as Error)?.name).toBe('QueryRunnerAlreadyReleasedError');
    expect((viaPgPulse as Error)?.name).toBe((baseline as Error).name);
    await cluster.close();
    cluster = undefined;
  }, 60_000);
});
