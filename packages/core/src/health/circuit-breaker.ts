/**
 * A node's circuit breaker: 'closed' (serving), 'open' (skipped after failures), 'half-open' (one
 * trial statement).
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** Consecutive availability failures that open the breaker (integer >= 1). */
  failureThreshold: number;
  /** Base time an open breaker waits before admitting a trial request. */
  resetTimeoutMs: number;
  /** Spread of the reset timeout, 0..1: each opening waits resetTimeoutMs * (1 ± jitter). */
  jitter: number;
  /** Clock in ms; defaults to a monotonic clock expressed as epoch ms. */
  now?: () => number;
  /** Source of randomness in [0, 1) for the jitter. */
  random?: () => number;
}

/** What a breaker reports, given once to its constructor (the internal hook style). */
export interface BreakerListener {
  /** Called once for each transition, in order. */
  readonly stateChanged?: (from: BreakerState, to: BreakerState) => void;
}

/**
 * Per-node circuit breaker: closed -> open after `failureThreshold` consecutive failures,
 * open -> half-open once a jittered reset timeout has passed, half-open -> closed on a successful
 * trial or back to open on a failed one.
 *
 * Feed it only availability errors (see isAvailabilityError): a user's bad SQL says nothing
 * about the node. The jitter exists so that many app instances that saw the same outage do not
 * all probe the recovering node in the same instant, and the single half-open trial keeps one
 * instance from stampeding it either.
 */
export class CircuitBreaker {
  readonly #failureThreshold: number;
  readonly #resetTimeoutMs: number;
  readonly #jitter: number;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #onStateChange: ((from: BreakerState, to: BreakerState) => void) | undefined;

  #state: BreakerState = 'closed';
  #consecutiveFailures = 0;
  #openedAt: number | undefined;
  #reopenAt = 0;
  #trialStartedAt: number | undefined;

  constructor(opts: CircuitBreakerOptions, listener: BreakerListener = {}) {
    if (!Number.isInteger(opts.failureThreshold) || opts.failureThreshold < 1) {
      throw new RangeError(
        `failureThreshold must be an integer >= 1 (got ${opts.failureThreshold})`,
      );
    }
    if (!(opts.resetTimeoutMs > 0) || !Number.isFinite(opts.resetTimeoutMs)) {
      throw new RangeError(`resetTimeoutMs must be a positive number (got ${opts.resetTimeoutMs})`);
    }
    if (!(opts.jitter >= 0 && opts.jitter <= 1)) {
      throw new RangeError(`jitter must be between 0 and 1 (got ${opts.jitter})`);
    }
    this.#failureThreshold = opts.failureThreshold;
    this.#resetTimeoutMs = opts.resetTimeoutMs;
    this.#jitter = opts.jitter;
    this.#now = opts.now ?? monotonicNow;
    this.#random = opts.random ?? Math.random;
    this.#onStateChange = listener.stateChanged;
  }

  /** The current state; reading it moves an expired open breaker to half-open. */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() >= this.#reopenAt) {
      this.#trialStartedAt = undefined;
      this.#transition('half-open');
    }
    return this.#state;
  }

  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** When the breaker last opened (in the `now()` clock); undefined while closed. */
  get openedAt(): number | undefined {
    return this.#openedAt;
  }

  /** When an open breaker will admit a trial (in the `now()` clock); undefined unless open. */
  get reopensAt(): number | undefined {
    return this.#state === 'open' ? this.#reopenAt : undefined;
  }

  /**
   * May a request be sent now? In half-open only one trial is admitted at a time: this returns
   * true once, then false until the trial reports through recordSuccess, recordFailure or
   * releaseTrial.
   */
  tryAcquire(): boolean {
    switch (this.state) {
      case 'closed':
        return true;
      case 'open':
        return false;
      case 'half-open':
        if (!this.#trialSlotFree()) return false;
        this.#trialStartedAt = this.#now();
        return true;
    }
  }

  /** Would tryAcquire() succeed? Does not take the half-open trial slot. */
  canRequest(): boolean {
    switch (this.state) {
      case 'closed':
        return true;
      case 'open':
        return false;
      case 'half-open':
        return this.#trialSlotFree();
    }
  }

  recordSuccess(): void {
    switch (this.state) {
      case 'closed':
        this.#consecutiveFailures = 0;
        return;
      case 'half-open':
        this.#close();
        return;
      case 'open':
        // A straggler admitted before the breaker opened; the outage verdict stands until a
        // trial says otherwise, so it neither closes nor shortens the wait.
        return;
    }
  }

  recordFailure(): void {
    switch (this.state) {
      case 'closed':
        this.#consecutiveFailures += 1;
        if (this.#consecutiveFailures >= this.#failureThreshold) this.#open();
        return;
      case 'half-open':
        this.#consecutiveFailures += 1;
        this.#open();
        return;
      case 'open':
        // Stragglers failing after the breaker opened are expected; they must not push the
        // reset further out or the node could stay banned for as long as traffic keeps coming.
        return;
    }
  }

  /**
   * The health probe reached the node on a connection opened after this breaker opened: an
   * open breaker goes to half-open at once instead of at its reset timeout, so a node that is
   * back rejoins within a probe interval. It still admits one trial at a time and a failed
   * trial opens it again; `evidenceAt` (the probe's send time, in the `now()` clock) must be
   * after the opening, or a probe that began before the outage would lift it.
   */
  nodeAnswered(evidenceAt: number): void {
    if (this.#state !== 'open' || this.#openedAt === undefined) return;
    if (evidenceAt < this.#openedAt) return;
    this.#trialStartedAt = undefined;
    this.#transition('half-open');
  }

  /** Give back a half-open trial slot without an outcome (the statement failed for a reason
   * that says nothing about the node, e.g. a user SQL error or a local pool timeout). */
  releaseTrial(): void {
    if (this.#state === 'half-open') this.#trialStartedAt = undefined;
  }

  #trialSlotFree(): boolean {
    if (this.#trialStartedAt === undefined) return true;
    // A trial whose caller never reported (a bug, or a hung statement) must not wedge the
    // breaker in half-open forever; after a full reset timeout another trial may go.
    return this.#now() - this.#trialStartedAt >= this.#resetTimeoutMs;
  }

  #open(): void {
    const now = this.#now();
    const spread = this.#jitter * (2 * clampUnit(this.#random()) - 1);
    this.#openedAt = now;
    this.#reopenAt = now + this.#resetTimeoutMs * (1 + spread);
    this.#trialStartedAt = undefined;
    this.#transition('open');
  }

  #close(): void {
    this.#consecutiveFailures = 0;
    this.#openedAt = undefined;
    this.#trialStartedAt = undefined;
    this.#transition('closed');
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#onStateChange?.(from, to);
  }
}

function clampUnit(value: number): number {
  if (!Number.isFinite(value) || value < 0) return 0;
  return Math.min(value, 1);
}

// Wall clocks jump (NTP, VM resume); a backwards jump would keep a breaker open for as long as
// the jump. performance.now() is monotonic, and adding timeOrigin keeps values readable as
// epoch milliseconds for anyone reporting `openedAt`.
function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}
