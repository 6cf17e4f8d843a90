/**
 * What a pool's end() and close() wait for: statements and checkouts issued and not yet
 * settled, and clients checked out and not yet released.
 */
export class InFlightWork {
  /** Statements and checkouts started and not yet settled (end() waits for them). */
  #count = 0;
  /** drained() waiting for the count to reach 0. */
  readonly #drained: (() => void)[] = [];
  /** Clients checked out and not yet released. */
  readonly #out = new Set<object>();
  /** quiet() waiting for the statements, checkouts and clients above to be done. */
  readonly #quiet: (() => void)[] = [];

  /** One statement or checkout started; settled() says when it is done. */
  started(): void {
    this.#count++;
  }

  /** One started statement or checkout settled. */
  settled(): void {
    if (--this.#count > 0) return;
    for (const done of this.#drained.splice(0)) done();
    this.checkQuiet();
  }

  /** started() now and settled() when `work` settles; `work` itself back. */
  track<T>(work: Promise<T>): Promise<T> {
    this.started();
    const settled = () => this.settled();
    work.then(settled, settled);
    return work;
  }

  checkedOut(client: object): void {
    this.#out.add(client);
  }

  /** The client is back; checkQuiet() tells quiet() once the caller has said so. */
  checkedIn(client: object): void {
    this.#out.delete(client);
  }

  /** Resolves once nothing started is in flight (what was started meanwhile included). */
  drained(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /**
   * Resolves true once the statements already issued have settled and every checked-out
   * client is back, or false when `timeoutMs` passes first.
   */
  quiet(timeoutMs: number): Promise<boolean> {
    if (this.isQuiet()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      // Referenced on purpose: a SIGTERM handler awaiting close() must get its answer.
      const timer = setTimeout(() => {
        const at = this.#quiet.indexOf(done);
        if (at >= 0) this.#quiet.splice(at, 1);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#quiet.push(done);
    });
  }

  checkQuiet(): void {
    if (this.#quiet.length === 0 || !this.isQuiet()) return;
    for (const done of this.#quiet.splice(0)) done();
  }

  private isQuiet(): boolean {
    return this.#count === 0 && this.#out.size === 0;
  }
}
