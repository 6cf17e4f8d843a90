/** A timer a Clock started; cancel() is idempotent. */
export interface ClockTimer {
  cancel(): void;
}

/**
 * Where the pool reads time and sets its timers (acquire deadlines, pre-ping limits, idle and
 * lifetime expiry). The system clock is the default; a test passes its own to move time by
 * hand instead of sleeping.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences matter). */
  now(): number;
  /**
   * Calls `fn` once after `ms`. `keepAlive: false` lets the process exit while the timer is
   * pending (an idle pool must not hold a script open).
   */
  schedule(ms: number, fn: () => void, keepAlive: boolean): ClockTimer;
}

/** Node timers cannot wait longer; larger values would fire after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

export const systemClock: Clock = {
  now: () => performance.now(),
  schedule(ms, fn, keepAlive) {
    const timer = setTimeout(fn, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    if (!keepAlive) timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};
