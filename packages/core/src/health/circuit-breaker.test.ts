import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BreakerState, CircuitBreaker, type CircuitBreakerOptions } from './index.js';

interface Harness {
  breaker: CircuitBreaker;
  clock: { now: number };
  transitions: Array<[BreakerState, BreakerState]>;
}

function harness(overrides: Partial<CircuitBreakerOptions> = {}): Harness {
  const clock = { now: 1_000 };
  const transitions: Array<[BreakerState, BreakerState]> = [];
  const breaker = new CircuitBreaker(
    {
      failureThreshold: 3,
      resetTimeoutMs: 1_000,
      jitter: 0,
      now: () => clock.now,
      random: () => 0.5,
      ...overrides,
    },
    { stateChanged: (from, to) => transitions.push([from, to]) },
  );
  return { breaker, clock, transitions };
}

// A function call, because TypeScript would keep `breaker.state` narrowed across mutations.
function stateOf(breaker: CircuitBreaker): BreakerState {
  return breaker.state;
}

function fail(breaker: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) breaker.recordFailure();
}

describe('CircuitBreaker', () => {
  it('a probe that reached the node after it opened lets one trial through at once (#11 item 6)', () => {
    const { breaker, clock } = harness();
    fail(breaker, 3);
    expect(stateOf(breaker)).toBe('open');
    // Evidence from before the opening (a probe sent earlier) changes nothing.
    breaker.nodeAnswered(clock.now - 1);
    expect(stateOf(breaker)).toBe('open');
    clock.now += 10;
    breaker.nodeAnswered(clock.now);
    expect(stateOf(breaker)).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    // A failed trial opens it again; the next probe after that may admit another trial.
    breaker.recordFailure();
    expect(stateOf(breaker)).toBe('open');
    clock.now += 10;
    breaker.nodeAnswered(clock.now);
    expect(breaker.tryAcquire()).toBe(true);
    breaker.recordSuccess();
    expect(stateOf(breaker)).toBe('closed');
    // On a closed breaker it is a no-op.
    breaker.nodeAnswered(clock.now + 1);
    expect(stateOf(breaker)).toBe('closed');
  });

  it('starts closed and admits requests', () => {
    const { breaker } = harness();
    expect(breaker.state).toBe('closed');
    expect(breaker.canRequest()).toBe(true);
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.openedAt).toBeUndefined();
  });

  it('opens after exactly failureThreshold consecutive failures', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), (threshold) => {
        const { breaker } = harness({ failureThreshold: threshold });
        fail(breaker, threshold - 1);
        if (breaker.state !== 'closed' || !breaker.tryAcquire()) return false;
        breaker.recordFailure();
        return stateOf(breaker) === 'open' && !breaker.tryAcquire() && !breaker.canRequest();
      }),
    );
  });

  it('resets the consecutive count on a success in between', () => {
    const { breaker } = harness({ failureThreshold: 3 });
    fail(breaker, 2);
    expect(breaker.consecutiveFailures).toBe(2);
    breaker.recordSuccess();
    expect(breaker.consecutiveFailures).toBe(0);
    fail(breaker, 2);
    expect(breaker.state).toBe('closed');
    breaker.recordFailure();
    expect(breaker.state).toBe('open');
  });

  it('records when it opened', () => {
    const { breaker, clock } = harness();
    clock.now = 5_000;
    fail(breaker, 3);
    expect(breaker.openedAt).toBe(5_000);
    expect(breaker.reopensAt).toBe(6_000);
  });

  it('moves to half-open within resetTimeoutMs * (1 ± jitter), for any random draw', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 100_000 }),
        (draw, jitter, resetTimeoutMs) => {
          const { breaker, clock } = harness({ random: () => draw, jitter, resetTimeoutMs });
          fail(breaker, 3);
          const openedAt = clock.now;
          const reopensAt = breaker.reopensAt!;
          if (reopensAt < openedAt + resetTimeoutMs * (1 - jitter) - 1e-6) return false;
          if (reopensAt > openedAt + resetTimeoutMs * (1 + jitter) + 1e-6) return false;
          clock.now = reopensAt - 0.001;
          if (reopensAt - 0.001 > openedAt && breaker.state !== 'open') return false;
          clock.now = reopensAt;
          return breaker.state === 'half-open';
        },
      ),
    );
  });

  it('uses the jitter bounds at the extreme random draws', () => {
    const low = harness({ jitter: 0.2, random: () => 0 });
    fail(low.breaker, 3);
    low.clock.now += 799;
    expect(low.breaker.state).toBe('open');
    low.clock.now += 1;
    expect(low.breaker.state).toBe('half-open');

    const high = harness({ jitter: 0.2, random: () => 0.999_999 });
    fail(high.breaker, 3);
    high.clock.now += 1_199;
    expect(high.breaker.state).toBe('open');
    high.clock.now += 1;
    expect(high.breaker.state).toBe('half-open');
  });

  it('admits only one trial at a time in half-open', () => {
    const { breaker, clock } = harness();
    fail(breaker, 3);
    clock.now += 1_000;
    expect(breaker.canRequest()).toBe(true);
    expect(breaker.canRequest()).toBe(true); // canRequest does not take the slot
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.canRequest()).toBe(false);
    expect(breaker.state).toBe('half-open');
  });

  it('closes when the trial succeeds', () => {
    const { breaker, clock } = harness();
    fail(breaker, 3);
    clock.now += 1_000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.recordSuccess();
    expect(breaker.state).toBe('closed');
    expect(breaker.consecutiveFailures).toBe(0);
    expect(breaker.openedAt).toBeUndefined();
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('re-opens with a new jittered timeout when the trial fails', () => {
    const draws = [0, 1 - Number.EPSILON];
    const { breaker, clock } = harness({ jitter: 0.5, random: () => draws.shift() ?? 0.5 });
    fail(breaker, 3);
    expect(breaker.reopensAt).toBe(clock.now + 500);
    clock.now += 500;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.recordFailure();
    expect(breaker.state).toBe('open');
    expect(breaker.openedAt).toBe(clock.now);
    expect(breaker.reopensAt).toBeCloseTo(clock.now + 1_500, 6);
    expect(breaker.tryAcquire()).toBe(false);
    clock.now += 1_499;
    expect(breaker.state).toBe('open');
    clock.now += 1;
    expect(breaker.state).toBe('half-open');
  });

  it('releaseTrial frees the slot without changing state', () => {
    const { breaker, clock } = harness();
    fail(breaker, 3);
    clock.now += 1_000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.releaseTrial();
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
  });

  it('releaseTrial is a no-op outside half-open', () => {
    const { breaker } = harness();
    breaker.releaseTrial();
    expect(breaker.state).toBe('closed');
    fail(breaker, 3);
    breaker.releaseTrial();
    expect(breaker.state).toBe('open');
  });

  it('does not let a trial that never reports wedge the breaker', () => {
    const { breaker, clock } = harness();
    fail(breaker, 3);
    clock.now += 1_000;
    expect(breaker.tryAcquire()).toBe(true);
    clock.now += 999;
    expect(breaker.tryAcquire()).toBe(false);
    clock.now += 1;
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('ignores outcomes of stragglers while open', () => {
    const { breaker, clock } = harness();
    fail(breaker, 3);
    const reopensAt = breaker.reopensAt;
    clock.now += 500;
    breaker.recordFailure();
    breaker.recordSuccess();
    expect(breaker.state).toBe('open');
    expect(breaker.reopensAt).toBe(reopensAt);
  });

  it("calls the listener's stateChanged once for each transition, in order", () => {
    const { breaker, clock, transitions } = harness();
    fail(breaker, 5); // extra failures while open do not re-announce
    clock.now += 1_000;
    expect(breaker.state).toBe('half-open');
    expect(breaker.state).toBe('half-open');
    breaker.tryAcquire();
    breaker.recordFailure();
    clock.now += 1_000;
    breaker.tryAcquire();
    breaker.recordSuccess();
    breaker.recordSuccess();
    expect(transitions).toEqual([
      ['closed', 'open'],
      ['open', 'half-open'],
      ['half-open', 'open'],
      ['open', 'half-open'],
      ['half-open', 'closed'],
    ]);
  });

  it('rejects options that cannot work', () => {
    const base = { failureThreshold: 1, resetTimeoutMs: 1, jitter: 0 };
    expect(() => new CircuitBreaker({ ...base, failureThreshold: 0 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ ...base, failureThreshold: 1.5 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ ...base, resetTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ ...base, jitter: 1.1 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ ...base, jitter: Number.NaN })).toThrow(RangeError);
  });

  it('works with the default clock and randomness', () => {
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      resetTimeoutMs: 60_000,
      jitter: 0.2,
    });
    const before = Date.now();
    breaker.recordFailure();
    expect(breaker.state).toBe('open');
    // The default clock reads as epoch ms (monotonic, so allow for timeOrigin drift).
    expect(Math.abs(breaker.openedAt! - before)).toBeLessThan(5_000);
  });
});
