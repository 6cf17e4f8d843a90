// Each consistency level means the same wherever it is set: cluster-wide (`consistency.level`),
// for a context (`withConsistency` around a block) or for one call (`withConsistency` around a
// single statement). The replica's replay is paused, so it is provably behind every write here.
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, type ConsistencyLevel, createCluster } from '../packages/core/src/index.js';

const LEVELS: readonly ConsistencyLevel[] = ['strong', 'read-your-writes', 'eventual'];
type Place = 'cluster' | 'context' | 'call';

/** The role of the node whose statement counter moved while `fn` ran. */
async function servedBy<T>(cluster: Cluster, fn: () => Promise<T>): Promise<[string[], T]> {
  const before = new Map(cluster.stats().nodes.map((n) => [n.name, n.counters.queries]));
  const value = await fn();
  const roles = cluster
    .stats()
    .nodes.filter((n) => n.counters.queries > (before.get(n.name) ?? 0))
    .map((n) => n.role);
  return [roles, value];
}

describe('consistency levels: the same meaning at every place they are set', () => {
  let sandbox: SandboxCluster;
  const clusters = new Map<ConsistencyLevel, Cluster>();
  let tag = 0;

  beforeAll(async () => {
    sandbox = await startCluster({ replicas: 1 });
    await sandbox.query('primary', 'CREATE TABLE items (id serial PRIMARY KEY, tag text)');
    await sandbox.waitForReplay();
    await sandbox.pauseReplay('replica1');
    for (const level of LEVELS) {
      const cluster = createCluster({
        primary: sandbox.primary.url,
        replicas: [sandbox.replicas[0]!.url],
        health: { intervalMs: 100 },
        // A paused replica stays in rotation: only the consistency level may keep reads off it.
        replicaLag: { maxLagMs: null, maxLagBytes: null },
        consistency: { level },
      });
      await cluster.ready();
      clusters.set(level, cluster);
    }
  }, 60_000);
  afterAll(async () => {
    for (const c of clusters.values()) await c.close();
    await sandbox?.stop();
  });

  const cases: { place: Place; level: ConsistencyLevel; base: ConsistencyLevel }[] = [];
  for (const level of LEVELS) {
    cases.push({ place: 'cluster', level, base: level });
    for (const base of LEVELS) {
      if (base === level) continue;
      cases.push({ place: 'context', level, base }, { place: 'call', level, base });
    }
  }

  it.each(cases)(
    '$level set per $place (cluster default $base): own write read back as the level says',
    async ({ place, level, base }) => {
      const cluster = clusters.get(place === 'cluster' ? level : base)!;
      const mine = `own-${place}-${level}-${base}-${++tag}`;
      const read = () =>
        cluster.pool.query('SELECT count(*)::int AS n FROM items WHERE tag = $1', [mine]);
      const [roles, result] = await cluster.context(async () => {
        const block = async () => {
          await cluster.pool.query('INSERT INTO items (tag) VALUES ($1)', [mine]);
          // 'call': the level wraps this one statement only.
          return servedBy(cluster, () =>
            place === 'call' ? cluster.withConsistency(level, read) : read(),
          );
        };
        return place === 'context' ? cluster.withConsistency(level, block) : block();
      });
      const n = (result.rows[0] as { n: number }).n;
      if (level === 'eventual') {
        // Eventual reads stay on the replica even right after the context's own write.
        expect(roles).toEqual(['replica']);
        expect(n).toBe(0);
      } else {
        expect(roles).toEqual(['primary']);
        expect(n).toBe(1);
      }
    },
  );

  it.each(cases)(
    '$level set per $place (cluster default $base): another context’s write',
    async ({ place, level, base }) => {
      const cluster = clusters.get(place === 'cluster' ? level : base)!;
      const theirs = `other-${place}-${level}-${base}-${++tag}`;
      await cluster.context(() =>
        cluster.pool.query('INSERT INTO items (tag) VALUES ($1)', [theirs]),
      );
      const read = () =>
        cluster.pool.query('SELECT count(*)::int AS n FROM items WHERE tag = $1', [theirs]);
      const [roles, result] = await cluster.context(() =>
        place === 'cluster'
          ? servedBy(cluster, read)
          : place === 'context'
            ? cluster.withConsistency(level, () => servedBy(cluster, read))
            : servedBy(cluster, () => cluster.withConsistency(level, read)),
      );
      const n = (result.rows[0] as { n: number }).n;
      if (level === 'strong') {
        // Strong: every read sees every committed write, so it goes to the primary.
        expect(roles).toEqual(['primary']);
        expect(n).toBe(1);
      } else {
        // A fresh context has written nothing: it keeps reading from the (lagging) replica.
        expect(roles).toEqual(['replica']);
        expect(n).toBe(0);
      }
    },
  );

  it('explainRoute and hasUnreplicatedWrites agree with the cluster-wide strong level', async () => {
    const strong = clusters.get('strong')!;
    expect(strong.explainRoute('SELECT 1')).toMatchObject({
      target: 'primary',
      reason: 'consistency-strong',
    });
    const eventual = clusters.get('eventual')!;
    expect(eventual.explainRoute('SELECT 1').target).toBe('replica');
    expect(eventual.withConsistency('strong', () => eventual.explainRoute('SELECT 1')).target).toBe(
      'primary',
    );
    await strong.context(async () => {
      await strong.pool.query("INSERT INTO items (tag) VALUES ('h')");
      expect(strong.hasUnreplicatedWrites()).toBe(true);
    });
  });
});
