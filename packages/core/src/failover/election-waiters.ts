/** Callers waiting for a primary to be elected (writes during a failover, `waitForPrimary`). */
export class ElectionWaiters {
  readonly #waiters = new Set<() => void>();

  /** Resolves at the next election, or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.#waiters;
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  /** A primary is elected (or the old one answers again): every waiter goes on. */
  wakeAll(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}
