/**
 * A fixed-size log-bucketed histogram of durations, for percentiles in bounded memory.
 *
 * Buckets grow by 2^(1/8) from 10 µs, so 266 of them span 10 µs to over a day and any
 * percentile it reports is within about 4.5 % of a value actually recorded near that rank
 * (the geometric middle of a bucket is at most 2^(1/16) from either edge). Memory is one
 * Uint32Array of ~1 kB whatever the number of samples; recording is O(1).
 */
const MIN_MS = 0.01;
const STEPS_PER_DOUBLING = 8;
const BUCKETS = 266;

export class LatencyHistogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #total = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = 0;

  get count(): number {
    return this.#total;
  }

  record(ms: number): void {
    const value = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const index =
      value <= MIN_MS
        ? 0
        : Math.min(BUCKETS - 1, 1 + Math.floor(Math.log2(value / MIN_MS) * STEPS_PER_DOUBLING));
    // Saturate rather than wrap: past 4 billion calls the shape no longer changes anyway.
    if (this.#counts[index]! < 0xffff_ffff) this.#counts[index]!++;
    this.#total++;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
  }

  /** The q-quantile (0..1), clamped to the smallest and largest recorded values. */
  quantile(q: number): number {
    if (this.#total === 0) return 0;
    const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * this.#total));
    if (rank >= this.#total) return this.#max;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(this.#max, Math.max(this.#min, representative(i)));
    }
    return this.#max;
  }
}

function representative(index: number): number {
  if (index === 0) return MIN_MS;
  return MIN_MS * 2 ** ((index - 0.5) / STEPS_PER_DOUBLING);
}
