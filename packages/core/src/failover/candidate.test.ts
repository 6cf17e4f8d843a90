import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CandidateView, compareCandidates, pickCandidate } from './candidate.js';

const view = (lsn: number | undefined, timeline: number | undefined, address: string) =>
  ({
    lsn: lsn === undefined ? undefined : BigInt(lsn),
    timeline,
    identity: { systemId: '7312', address },
  }) satisfies CandidateView;

describe('candidate rule', () => {
  it('most WAL first, then the newer timeline, then the identity', () => {
    expect(pickCandidate([view(10, 1, 'b:1'), view(20, 1, 'c:1')])?.identity.address).toBe('c:1');
    expect(pickCandidate([view(20, 1, 'a:1'), view(20, 2, 'c:1')])?.identity.address).toBe('c:1');
    expect(pickCandidate([view(20, 2, 'c:1'), view(20, 2, 'a:1')])?.identity.address).toBe('a:1');
    expect(pickCandidate([view(undefined, 3, 'a:1'), view(0, 1, 'z:1')])?.identity.address).toBe(
      'z:1',
    );
    expect(pickCandidate([])).toBeUndefined();
  });

  it('any order of the same standbys gives the same pick (property)', () => {
    const arbView = fc.record({
      lsn: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
      timeline: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      port: fc.integer({ min: 1, max: 6 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(arbView, { minLength: 1, maxLength: 6, selector: (v) => v.port }),
        fc.integer(),
        (raw, seed) => {
          const views = raw.map((r) => view(r.lsn, r.timeline, `127.0.0.1:${r.port}`));
          const shuffled = [...views].sort(
            (a, b) =>
              ((hash(a.identity.address) ^ seed) >>> 0) - ((hash(b.identity.address) ^ seed) >>> 0),
          );
          expect(pickCandidate(shuffled)).toBe(pickCandidate(views));
          // A total order: the pick beats or ties every other standby.
          const best = pickCandidate(views)!;
          for (const v of views) expect(compareCandidates(best, v)).toBeLessThanOrEqual(0);
        },
      ),
    );
  });
});

function hash(text: string): number {
  let h = 0;
  for (const c of text) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h;
}
