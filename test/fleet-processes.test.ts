// The fleet harness, small: app instances as separate processes with shuffled replica orders
// and probe phases, automatic promotion without a coordinator, the primary killed twice. Asserts
// invariants only (pnpm bench:fleet runs the large version and prints the timings).
import { describe, expect, it } from 'vitest';
import { runFleet } from '../bench/lib/fleet.js';

describe('fleet of processes', () => {
  it('3 instances, 2 kills: exactly one primary each round, no acknowledged write on another node', {
    timeout: 240_000,
  }, async () => {
    const rounds = await runFleet({ instances: 3, rounds: 2, log: (l) => console.log(l) });
    expect(rounds).toHaveLength(2);
    for (const r of rounds) {
      expect(r.primaries).toHaveLength(1);
      expect(r.strayAcks).toBe(0);
      expect(r.acksAfterKill).toBeGreaterThan(0);
    }
  });
});
