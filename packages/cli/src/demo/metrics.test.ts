/**
 * The sampler credits each delta to a role; a failover changes roles between two samples.
 * The cluster here is plain data (what `cluster.stats()` returns), not PostgreSQL: the
 * routing itself is tested against the sandbox in demo.test.ts.
 */
import type { Cluster } from '@pgpulse/core';
import { describe, expect, it } from 'vitest';
import { StatsSampler } from './metrics.js';

interface FakeNode {
  name: string;
  role: 'primary' | 'replica';
  reads: number;
  writes: number;
}

function fakeCluster(nodes: FakeNode[]): Cluster {
  const stats = () => ({
    nodes: nodes.map((n) => ({
      name: n.name,
      role: n.role,
      up: true,
      lagging: false,
      lagMs: 0,
      counters: { reads: n.reads, writes: n.writes },
      pool: { inUse: 0, total: 0, max: 1 },
      breaker: 'closed',
    })),
  });
  return {
    stats,
    nodes: nodes.map((n) => ({ name: n.name, fenced: false })),
  } as unknown as Cluster;
}

describe('StatsSampler', () => {
  it('credits writes acknowledged by the old primary before a failover to the primary role', () => {
    const a: FakeNode = { name: 'a', role: 'primary', reads: 0, writes: 0 };
    const b: FakeNode = { name: 'b', role: 'replica', reads: 0, writes: 0 };
    const sampler = new StatsSampler(fakeCluster([a, b]), 1_000_000, () => {});
    sampler.start();
    // The old primary acknowledges 2 writes, then is demoted when b is promoted; b takes
    // 3 writes; all before the next sample.
    a.writes += 2;
    a.role = 'replica';
    b.role = 'primary';
    b.writes += 3;
    b.reads += 1;
    sampler.stop();
    expect(sampler.byRole.replica.writes).toBe(0);
    expect(sampler.byRole.primary.writes).toBe(5);
    // A node that was a replica at both ends of an interval is a replica's work.
    const c: FakeNode = { name: 'c', role: 'replica', reads: 0, writes: 0 };
    const other = new StatsSampler(fakeCluster([c]), 1_000_000, () => {});
    other.start();
    c.reads += 4;
    c.writes += 1;
    other.stop();
    expect(other.byRole.replica).toEqual({ reads: 4, writes: 1 });
  });
});
