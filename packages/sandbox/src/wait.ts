/**
 * Waiting without fixed sleeps: poll a condition until it holds or a deadline passes. The
 * sandbox waits this way for servers, replay and streaming; tests get the same helpers from
 * `@pgpulse/sandbox/testing`.
 */

/** Resolves after `ms` milliseconds, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** How long waitUntil() checks, how often, and what its time-out error says. */
export interface WaitUntilOptions {
  /** How long to keep checking (default 10 000 ms). */
  readonly timeoutMs?: number;
  /** Pause between two checks (default 10 ms). */
  readonly intervalMs?: number;
  /**
   * What did not happen, for the time-out error (`<message> within <timeoutMs> ms`); a function
   * is called only on time-out, so it can describe the last state seen.
   */
  readonly message?: string | (() => string);
  /**
   * Treat an error thrown by the check as "not yet" (default false: the error fails the wait at
   * once). The last such error is named in the time-out error.
   */
  readonly retryErrors?: boolean;
}

/** A check's result that counts as "not yet". */
type NotYet = false | undefined | null;

/**
 * Calls `check` until it returns something other than `false`, `undefined` or `null`, and
 * returns that value; throws when `timeoutMs` passes first. The deadline is a guard against a
 * hang, never an assertion on speed: give it room on a loaded machine.
 */
export async function waitUntil<T>(
  check: () => T | Promise<T>,
  options: WaitUntilOptions = {},
): Promise<Exclude<T, NotYet>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== false && value !== undefined && value !== null) {
        return value as Exclude<T, NotYet>;
      }
    } catch (error) {
      if (!options.retryErrors) throw error;
      lastError = error;
    }
    if (performance.now() > deadline) {
      const what =
        typeof options.message === 'function'
          ? options.message()
          : (options.message ?? 'the condition was not met');
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`${what} within ${timeoutMs} ms${why}`);
    }
    await sleep(options.intervalMs ?? 10);
  }
}

/**
 * Waits until `rounds` whole rounds of something periodic (pgpulse's health probes:
 * `() => cluster.stats().probeRounds`; its alert rounds: `alertRounds`) have run after this
 * call, however long they take on a loaded machine. A round under way at the call does not
 * count. For "N probe intervals later" without assuming how long an interval takes.
 */
export async function waitForRounds(
  completed: () => number,
  rounds: number,
  options: Omit<WaitUntilOptions, 'message'> = {},
): Promise<void> {
  const target = completed() + rounds + 1;
  await waitUntil(() => completed() >= target, {
    timeoutMs: 30_000,
    ...options,
    message: () => `${rounds} rounds did not run (${completed()} of ${target})`,
  });
}
