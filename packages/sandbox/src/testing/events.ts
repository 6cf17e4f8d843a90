/** Waiting for an event instead of sleeping for as long as it usually takes. */

/**
 * Anything with `on`/`off` listeners: a Node.js EventEmitter, pgpulse's cluster, a pg client.
 * The parameters are `never` so that typed and overloaded emitters fit; `nextEvent` passes the
 * event name and a listener, as every emitter takes them.
 */
export interface Listenable {
  on(...args: never[]): unknown;
  off(...args: never[]): unknown;
}

type Subscribe = (event: string, listener: (...args: unknown[]) => void) => unknown;

/** How long nextEvent() waits, and which events count. */
export interface NextEventOptions<A extends unknown[]> {
  /** Rejects after this long (default 10 000 ms): a guard against a hang, not a speed check. */
  readonly timeoutMs?: number;
  /** Only an event whose arguments pass this counts (e.g. a node-down of one node). */
  readonly where?: (...args: A) => boolean;
}

/**
 * The arguments of the next `event` that `emitter` emits (and that passes `where`). Subscribe
 * before causing the event: call this first, then act, then await the promise.
 */
export function nextEvent<A extends unknown[] = unknown[]>(
  emitter: Listenable,
  event: string,
  options: NextEventOptions<A> = {},
): Promise<A> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise<A>((resolve, reject) => {
    const listener = (...received: unknown[]) => {
      const args = received as A;
      if (options.where && !options.where(...args)) return;
      clearTimeout(timer);
      (emitter.off as Subscribe).call(emitter, event, listener);
      resolve(args);
    };
    const timer = setTimeout(() => {
      (emitter.off as Subscribe).call(emitter, event, listener);
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    (emitter.on as Subscribe).call(emitter, event, listener);
  });
}
