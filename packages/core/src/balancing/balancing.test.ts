import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors/index.js';
import {
  type BalancerCandidate,
  createBalancer,
  Ewma,
  LOAD_BALANCING_STRATEGIES,
  type LoadBalancingStrategy,
} from './index.js';

interface Node extends BalancerCandidate {
  name: string;
  weight: number;
  inFlight: number;
  latencyEwmaMs: number;
}

function node(name: string, fields: Partial<Omit<Node, 'name'>> = {}): Node {
  return { name, weight: 1, inFlight: 0, latencyEwmaMs: 0, ...fields };
}

/** mulberry32: a tiny seeded PRNG so statistical tests are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function countPicks(
  strategy: LoadBalancingStrategy,
  nodes: readonly Node[],
  picks: number,
): Map<string, number> {
  const balancer = createBalancer(strategy, { random: seeded(1) });
  const counts = new Map<string, number>(nodes.map((n) => [n.name, 0]));
  for (let i = 0; i < picks; i++) {
    const picked = balancer.pick(nodes);
    if (picked === undefined) throw new Error('no pick');
    counts.set(picked.name, (counts.get(picked.name) ?? 0) + 1);
  }
  return counts;
}

describe('createBalancer', () => {
  it.each(LOAD_BALANCING_STRATEGIES)('%s returns undefined for no candidates', (strategy) => {
    expect(createBalancer(strategy).pick([])).toBeUndefined();
  });

  it.each(LOAD_BALANCING_STRATEGIES)('%s returns the only candidate', (strategy) => {
    const only = node('only');
    const balancer = createBalancer(strategy);
    for (let i = 0; i < 5; i++) expect(balancer.pick([only])).toBe(only);
  });

  it('rejects an unknown strategy with a ConfigError naming loadBalancing', () => {
    expect(() => createBalancer('random' as LoadBalancingStrategy)).toThrow(ConfigError);
    try {
      createBalancer('random' as LoadBalancingStrategy);
    } catch (err) {
      expect((err as ConfigError).issues[0]?.field).toBe('loadBalancing');
    }
  });

  it.each(LOAD_BALANCING_STRATEGIES)(
    '%s stays correct while the eligible set changes between calls',
    (strategy) => {
      const universe = ['a', 'b', 'c', 'd', 'e'].map((name, i) =>
        node(name, { weight: i + 1, inFlight: i % 3, latencyEwmaMs: i === 4 ? 0 : 5 * (i + 1) }),
      );
      fc.assert(
        fc.property(
          fc.array(fc.subarray(universe, { minLength: 0 }), { minLength: 1, maxLength: 60 }),
          fc.integer(),
          (sets, seed) => {
            const balancer = createBalancer(strategy, { random: seeded(seed) });
            for (const set of sets) {
              const picked = balancer.pick(set);
              if (set.length === 0) {
                if (picked !== undefined) return false;
              } else if (picked === undefined || !set.includes(picked)) {
                return false;
              }
            }
            return true;
          },
        ),
      );
    },
  );

  it('survives a random() that returns the closed upper bound or garbage', () => {
    const nodes = [node('a'), node('b'), node('c')];
    for (const value of [1, 0.9999999999, -0.5, Number.NaN]) {
      const picked = createBalancer('adaptive', { random: () => value }).pick(nodes);
      expect(nodes).toContain(picked);
    }
  });
});

describe('round-robin', () => {
  it('gives each of n candidates exactly k of k*n picks, from any starting point', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 30 }),
        fc.nat(50),
        (n, k, warmUp) => {
          const nodes = Array.from({ length: n }, (_, i) => node(`r${i}`));
          const balancer = createBalancer('round-robin');
          for (let i = 0; i < warmUp; i++) balancer.pick(nodes.slice(0, 1 + (i % n)));
          const counts = new Map<string, number>();
          for (let i = 0; i < k * n; i++) {
            const picked = balancer.pick(nodes)!;
            counts.set(picked.name, (counts.get(picked.name) ?? 0) + 1);
          }
          return nodes.every((nd) => counts.get(nd.name) === k);
        },
      ),
    );
  });

  it('never picks the same node twice in a row with two or more candidates', () => {
    const nodes = [node('a'), node('b'), node('c')];
    const balancer = createBalancer('round-robin');
    let previous = balancer.pick(nodes);
    for (let i = 0; i < 100; i++) {
      const picked = balancer.pick(nodes);
      expect(picked).not.toBe(previous);
      previous = picked;
    }
  });
});

describe('weighted (smooth weighted round-robin)', () => {
  it('splits weights 1:2 exactly 1000/2000 over 3000 picks', () => {
    const counts = countPicks(
      'weighted',
      [node('a', { weight: 1 }), node('b', { weight: 2 })],
      3000,
    );
    expect(counts.get('a')).toBe(1000);
    expect(counts.get('b')).toBe(2000);
  });

  it('interleaves: every window of 3 consecutive picks holds exactly one a (1:2)', () => {
    const nodes = [node('a', { weight: 1 }), node('b', { weight: 2 })];
    const balancer = createBalancer('weighted');
    const sequence = Array.from({ length: 300 }, () => balancer.pick(nodes)!.name);
    for (let i = 0; i + 3 <= sequence.length; i++) {
      expect(sequence.slice(i, i + 3).filter((n) => n === 'a')).toHaveLength(1);
    }
    expect(sequence.slice(0, 6).join('')).toMatch(/^(bab|abb|bba)+$/);
  });

  it('gives every node exactly weight*k picks over k*sum(weights) picks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 10 }),
        (weights, k) => {
          const nodes = weights.map((weight, i) => node(`w${i}`, { weight }));
          const total = weights.reduce((a, b) => a + b, 0);
          const counts = countPicks('weighted', nodes, k * total);
          return nodes.every((nd) => counts.get(nd.name) === nd.weight * k);
        },
      ),
    );
  });

  it('spreads a heavy node: with 5:1:1 the heavy node never runs 5 in a row', () => {
    const nodes = [node('h', { weight: 5 }), node('x', { weight: 1 }), node('y', { weight: 1 })];
    const balancer = createBalancer('weighted');
    const sequence = Array.from({ length: 70 }, () => balancer.pick(nodes)!.name).join('');
    expect(sequence).not.toContain('hhhhh');
  });

  it('keeps serving when every weight is 0', () => {
    const nodes = [node('a', { weight: 0 }), node('b', { weight: 0 })];
    const counts = countPicks('weighted', nodes, 10);
    expect(counts.get('a')).toBe(5);
    expect(counts.get('b')).toBe(5);
  });
});

describe('least-connections', () => {
  it('always picks a candidate with the fewest in-flight statements', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(20), { minLength: 1, maxLength: 8 }),
        fc.nat(20),
        (loads, warmUp) => {
          const nodes = loads.map((inFlight, i) => node(`l${i}`, { inFlight }));
          const balancer = createBalancer('least-connections');
          for (let i = 0; i < warmUp; i++) balancer.pick(nodes);
          const picked = balancer.pick(nodes)!;
          return picked.inFlight === Math.min(...loads);
        },
      ),
    );
  });

  it('rotates among tied minimum nodes instead of always taking the first', () => {
    const nodes = [
      node('a', { inFlight: 0 }),
      node('b', { inFlight: 4 }),
      node('c', { inFlight: 0 }),
    ];
    const counts = countPicks('least-connections', nodes, 100);
    expect(counts.get('a')).toBe(50);
    expect(counts.get('c')).toBe(50);
    expect(counts.get('b')).toBe(0);
  });
});

describe('adaptive (power of two choices)', () => {
  it('sends less than 20% of 10k picks to a node with 10x the latency', () => {
    const random = seeded(42);
    const fast = node('fast', { latencyEwmaMs: 10 });
    const slow = node('slow', { latencyEwmaMs: 100 });
    const balancer = createBalancer('adaptive', { random });
    let slowPicks = 0;
    for (let i = 0; i < 10_000; i++) {
      // In-flight counts fluctuate under load; the fast node is often the busier one.
      fast.inFlight = Math.floor(random() * 12);
      slow.inFlight = Math.floor(random() * 2);
      if (balancer.pick([fast, slow]) === slow) slowPicks += 1;
    }
    expect(slowPicks).toBeGreaterThan(0); // slow, not banned
    expect(slowPicks / 10_000).toBeLessThan(0.2);
  });

  it('with several replicas, one slow replica gets a small share', () => {
    const nodes = [
      node('a', { latencyEwmaMs: 10 }),
      node('b', { latencyEwmaMs: 11 }),
      node('c', { latencyEwmaMs: 9 }),
      node('slow', { latencyEwmaMs: 100 }),
    ];
    const counts = countPicks('adaptive', nodes, 10_000);
    expect((counts.get('slow') ?? 0) / 10_000).toBeLessThan(0.2);
    for (const name of ['a', 'b', 'c']) expect(counts.get(name)).toBeGreaterThan(1000);
  });

  it('splits evenly between nodes whose latencies differ by noise (1.2x)', () => {
    // Two equal replicas on a shared machine: one is 20 % slower for a while. Moving traffic
    // for that starved the slower one below 40 % of a closed loop on CI (issue #11 item 7).
    const nodes = [node('a', { latencyEwmaMs: 10 }), node('b', { latencyEwmaMs: 12 })];
    const counts = countPicks('adaptive', nodes, 10_000);
    for (const name of ['a', 'b']) expect((counts.get(name) ?? 0) / 10_000).toBeGreaterThan(0.45);
  });

  it('moves traffic away from a node twice as slow (about 20 % left to it)', () => {
    const nodes = [node('fast', { latencyEwmaMs: 10 }), node('slow', { latencyEwmaMs: 20 })];
    const share = (countPicks('adaptive', nodes, 10_000).get('slow') ?? 0) / 10_000;
    expect(share).toBeGreaterThan(0.1);
    expect(share).toBeLessThan(0.3);
  });

  it('gives a node without latency samples traffic (scored as the best known latency)', () => {
    const nodes = [node('known', { latencyEwmaMs: 10 }), node('new', { latencyEwmaMs: 0 })];
    const counts = countPicks('adaptive', nodes, 1000);
    expect(counts.get('new')).toBeGreaterThan(300);
    expect(counts.get('known')).toBeGreaterThan(300);
  });

  it('prefers the less loaded node when latencies are equal', () => {
    const nodes = [
      node('busy', { latencyEwmaMs: 10, inFlight: 9 }),
      node('idle', { latencyEwmaMs: 10 }),
    ];
    const counts = countPicks('adaptive', nodes, 100);
    expect(counts.get('idle')).toBe(100);
  });
});

describe('Ewma', () => {
  it('is 0 (unknown) before the first sample and equals the first sample after it', () => {
    const ewma = new Ewma(1000);
    expect(ewma.value).toBe(0);
    expect(ewma.hasSamples).toBe(false);
    ewma.update(42, 0);
    expect(ewma.value).toBe(42);
    expect(ewma.hasSamples).toBe(true);
  });

  it('halves the influence of old samples every half-life', () => {
    const ewma = new Ewma(1000);
    ewma.update(100, 0);
    ewma.update(0, 1000);
    // (100 * 0.5 + 0 * 1) / (0.5 + 1)
    expect(ewma.value).toBeCloseTo(100 / 3, 10);
    ewma.update(0, 1_000_000);
    expect(ewma.value).toBeLessThan(1e-9);
  });

  it('averages samples that arrive in the same millisecond instead of dropping them', () => {
    const ewma = new Ewma(1000);
    ewma.update(10, 5);
    ewma.update(30, 5);
    expect(ewma.value).toBe(20);
  });

  it('ignores invalid samples and a clock going backwards', () => {
    const ewma = new Ewma(1000);
    ewma.update(10, 1000);
    ewma.update(Number.NaN, 1000);
    ewma.update(-5, 1000);
    expect(ewma.value).toBe(10);
    ewma.update(30, 0);
    expect(ewma.value).toBe(20);
  });

  it('tracks a level shift within a few half-lives', () => {
    const ewma = new Ewma(100);
    for (let t = 0; t < 1000; t += 10) ewma.update(10, t);
    for (let t = 1000; t < 1500; t += 10) ewma.update(100, t);
    expect(ewma.value).toBeGreaterThan(95);
  });

  it('rejects a non-positive half-life', () => {
    expect(() => new Ewma(0)).toThrow(RangeError);
    expect(() => new Ewma(Number.NaN)).toThrow(RangeError);
  });
});
