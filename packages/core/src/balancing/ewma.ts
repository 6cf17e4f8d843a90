/**
 * Time-decayed exponentially weighted moving average.
 *
 * Implemented as a decayed weighted mean (sum of decayed samples / sum of decayed weights)
 * rather than the textbook `value += alpha * (sample - value)` with `alpha` derived from the
 * time gap: with the textbook form, samples that arrive within the same millisecond (a burst
 * of concurrent queries finishing together) get `alpha = 0` and are silently dropped. Here they
 * are averaged, and a sample's influence halves every `halfLifeMs` regardless of how many
 * samples arrive, so a node that was slow an hour ago is judged on what it does now.
 */
export class Ewma {
  readonly halfLifeMs: number;
  #weightedSum = 0;
  #weight = 0;
  #lastMs: number | undefined;

  constructor(halfLifeMs = 5_000) {
    if (!(halfLifeMs > 0) || !Number.isFinite(halfLifeMs)) {
      throw new RangeError(`Ewma halfLifeMs must be a positive finite number (got ${halfLifeMs})`);
    }
    this.halfLifeMs = halfLifeMs;
  }

  update(sampleMs: number, nowMs: number = performance.now()): void {
    // A NaN or negative latency is a caller bug; letting it in would poison the average forever.
    if (!Number.isFinite(sampleMs) || sampleMs < 0) return;
    if (this.#lastMs !== undefined) {
      // Clamp: an injected clock that goes backwards must not amplify old samples.
      const elapsed = Math.max(0, nowMs - this.#lastMs);
      const decay = 2 ** (-elapsed / this.halfLifeMs);
      this.#weightedSum *= decay;
      this.#weight *= decay;
    }
    this.#weightedSum += sampleMs;
    this.#weight += 1;
    this.#lastMs = this.#lastMs === undefined ? nowMs : Math.max(this.#lastMs, nowMs);
  }

  /** The current average in ms; 0 until the first sample (balancers read 0 as "unknown"). */
  get value(): number {
    return this.#weight === 0 ? 0 : this.#weightedSum / this.#weight;
  }

  get hasSamples(): boolean {
    return this.#weight > 0;
  }

  reset(): void {
    this.#weightedSum = 0;
    this.#weight = 0;
    this.#lastMs = undefined;
  }
}
