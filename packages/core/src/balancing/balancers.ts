import { ConfigError } from '../errors/index.js';

/** What a balancer needs to know about an eligible node. */
export interface BalancerCandidate {
  readonly name: string;
  readonly weight: number;
  /**
   * Statements this node has been chosen for and not finished: those waiting for a connection
   * and those a balancer picked in this turn of the event loop count too, so a burst of
   * statements issued together spreads instead of all seeing the same idle node.
   */
  readonly inFlight: number;
  /** EWMA of statement latency in ms; 0 means "no samples yet". */
  readonly latencyEwmaMs: number;
}

/**
 * Picks one node among the nodes eligible for a statement.
 *
 * The candidate list is recomputed per statement (health, breaker and lag decide eligibility),
 * so it may shrink and grow between calls; implementations key any state by `name`, never by
 * position, and always return an element of the list they were given.
 */
export interface Balancer {
  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined;
}

export const LOAD_BALANCING_STRATEGIES = [
  'round-robin',
  'weighted',
  'least-connections',
  'adaptive',
] as const;

/** How a read chooses among the replicas that may serve it. */
export type LoadBalancingStrategy = (typeof LOAD_BALANCING_STRATEGIES)[number];

export interface BalancerOptions {
  /** Source of randomness in [0, 1) for `adaptive`; inject a seeded one in tests. */
  random?: () => number;
}

export function createBalancer(
  strategy: LoadBalancingStrategy,
  options: BalancerOptions = {},
): Balancer {
  switch (strategy) {
    case 'round-robin':
      return new RoundRobinBalancer();
    case 'weighted':
      return new WeightedBalancer();
    case 'least-connections':
      return new LeastConnectionsBalancer();
    case 'adaptive':
      return new AdaptiveBalancer(options.random ?? Math.random);
    default: {
      // Reachable from JavaScript callers or a config object built without parseConfig().
      const got: unknown = strategy satisfies never;
      throw new ConfigError([
        {
          field: 'loadBalancing',
          message: `must be one of ${LOAD_BALANCING_STRATEGIES.map((s) => `'${s}'`).join(' | ')} (got ${String(got)})`,
        },
      ]);
    }
  }
}

export class RoundRobinBalancer implements Balancer {
  // Kept below the candidate count so it never loses precision, however long the process runs.
  #next = 0;

  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    const index = this.#next % n;
    this.#next = index + 1;
    return candidates[index];
  }
}

/**
 * Smooth weighted round-robin, as nginx does it: every pick adds each candidate's weight to its
 * running score, takes the highest, and charges the winner the total. Over any window of
 * `sum(weights)` picks each node gets exactly its share, and the picks interleave (1:2 gives
 * b a b b a b ..., never a a b b b b) so no replica receives a burst.
 */
export class WeightedBalancer implements Balancer {
  // Scores survive a node leaving the eligible set, so a node that flaps does not jump the
  // queue when it returns; the map is bounded by the number of configured node names.
  readonly #current = new Map<string, number>();
  readonly #fallback = new RoundRobinBalancer();

  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined {
    let total = 0;
    let best: T | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (const candidate of candidates) {
      const weight = usableWeight(candidate.weight);
      if (weight === 0) continue;
      total += weight;
      const score = (this.#current.get(candidate.name) ?? 0) + weight;
      this.#current.set(candidate.name, score);
      if (score > bestScore) {
        bestScore = score;
        best = candidate;
      }
    }
    if (best === undefined) {
      // Every candidate has weight 0 (or none was given): still serve rather than fail a read.
      return this.#fallback.pick(candidates);
    }
    this.#current.set(best.name, bestScore - total);
    return best;
  }
}

function usableWeight(weight: number): number {
  return Number.isFinite(weight) && weight > 0 ? weight : 0;
}

/**
 * Least outstanding requests (pgcat's `loc`). Ties rotate, because with an idle cluster every
 * node has 0 in flight and "first minimum" would send all traffic to the first replica.
 */
export class LeastConnectionsBalancer implements Balancer {
  #turn = 0;

  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined {
    let min = Number.POSITIVE_INFINITY;
    let ties = 0;
    for (const candidate of candidates) {
      const load = candidate.inFlight;
      if (load < min) {
        min = load;
        ties = 1;
      } else if (load === min) {
        ties += 1;
      }
    }
    if (ties === 0) {
      // Only reachable when every inFlight is NaN; degrade to rotation instead of failing.
      if (candidates.length === 0) return undefined;
      const index = this.#turn % candidates.length;
      this.#turn = index + 1;
      return candidates[index];
    }
    let wanted = this.#turn % ties;
    this.#turn = wanted + 1;
    for (const candidate of candidates) {
      if (candidate.inFlight === min) {
        if (wanted === 0) return candidate;
        wanted -= 1;
      }
    }
    return undefined;
  }
}

/**
 * Power of two choices on latency x (in-flight + 1). Sampling two instead of scanning for the
 * global best avoids herding: many app instances with the same view would otherwise all pick
 * the same "best" replica at once. A slow replica loses traffic in proportion to how slow it
 * is, but is never banned, so it keeps producing samples that let it win traffic back.
 */
export class AdaptiveBalancer implements Balancer {
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  pick<T extends BalancerCandidate>(candidates: readonly T[]): T | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];

    // A node without samples is scored as the best known latency: scoring it 0 would flood a
    // fresh node, scoring it high would starve it and it would never get measured.
    let knownMin = Number.POSITIVE_INFINITY;
    for (const candidate of candidates) {
      const latency = candidate.latencyEwmaMs;
      if (latency > 0 && latency < knownMin) knownMin = latency;
    }
    const unknownLatency = knownMin === Number.POSITIVE_INFINITY ? 1 : knownMin;

    let first: T;
    let second: T;
    if (n === 2) {
      first = candidates[0]!;
      second = candidates[1]!;
    } else {
      const i = this.#index(n);
      let j = this.#index(n - 1);
      if (j >= i) j += 1;
      first = candidates[i]!;
      second = candidates[j]!;
    }
    const firstScore = score(first, unknownLatency);
    const secondScore = score(second, unknownLatency);
    // Not "always the lower score": two equal replicas never have exactly equal averages, and
    // the one a hair behind would get nothing, so its average would only ever be fed by probes
    // and it could not win traffic back (issue #11: 0 of 500 reads). Scores within
    // NOISE_RATIO of each other are a coin toss: on a shared machine two equal replicas differ
    // by 10-20 % for seconds at a time (CI measured 38.9 % / 61.1 % when 1.2x counted), which
    // is noise, not a signal worth moving traffic for. Beyond it the lower score wins with odds
    // of r³ : 1 for r = ratio / NOISE_RATIO: 2x slower gets 20 %, 10x slower 0.2 %.
    const lo = Math.min(firstScore, secondScore);
    const hi = Math.max(firstScore, secondScore);
    const better = secondScore < firstScore ? second : first;
    const worse = better === first ? second : first;
    if (!(lo > 0) || !Number.isFinite(hi)) return this.#random() < 0.5 ? worse : better;
    const beyondNoise = Math.max(1, hi / lo / NOISE_RATIO);
    const worseOdds = 1 / (1 + beyondNoise ** 3);
    return this.#random() < worseOdds ? worse : better;
  }

  #index(n: number): number {
    // Clamp: a user-supplied random() returning exactly 1 (or garbage) must not index past the end.
    const r = this.#random();
    const i = Math.floor((Number.isFinite(r) ? r : 0) * n);
    return i < 0 ? 0 : i >= n ? n - 1 : i;
  }
}

/** Score ratios up to this are treated as equal by the adaptive balancer (see its pick()). */
const NOISE_RATIO = 1.25;

function score(candidate: BalancerCandidate, unknownLatency: number): number {
  const latency = candidate.latencyEwmaMs > 0 ? candidate.latencyEwmaMs : unknownLatency;
  // `|| 0` maps NaN to 0, which Math.max alone would propagate into every comparison.
  const inFlight = Math.max(0, candidate.inFlight || 0);
  return latency * (inFlight + 1);
}
