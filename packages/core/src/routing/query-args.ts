import type pg from 'pg';

export type QueryCallback = (err: Error | null, result?: pg.QueryResult) => void;

/** One statement as every pg call form reduces to it. */
export interface QueryRequest {
  readonly text: string;
  /** What is passed to the physical client: pg's own config object (rowMode, types, name...). */
  readonly config: pg.QueryConfig & { rowMode?: 'array' };
  /**
   * True when the caller passed SQL text (and values), not a config object: the statement is
   * then sent as (text, values), which spares pg the copy it makes of every config object.
   */
  readonly plain: boolean;
  readonly callback: QueryCallback | undefined;
  /** Set by the result cache for telemetry (`pgpulse.cache`): this round trip missed or bypassed it. */
  readonly cache?: 'miss' | 'bypass';
}

export function isSubmittable(value: unknown): value is pg.Submittable & { text?: unknown } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as pg.Submittable).submit === 'function'
  );
}

/**
 * Accepts pg's call forms: (text), (text, values), (text, callback), (text, values, callback),
 * and the same with a config object in place of text.
 */
export function normalizeQueryArgs(
  first: unknown,
  second?: unknown,
  third?: unknown,
): QueryRequest {
  let callback: QueryCallback | undefined;
  let values: unknown;
  if (typeof second === 'function') callback = second as QueryCallback;
  else {
    values = second;
    if (typeof third === 'function') callback = third as QueryCallback;
  }
  let config: pg.QueryConfig;
  const plain = typeof first === 'string';
  if (typeof first === 'string') {
    config = values === undefined ? { text: first } : { text: first, values: values as unknown[] };
  } else if (
    typeof first === 'object' &&
    first !== null &&
    typeof (first as pg.QueryConfig).text === 'string'
  ) {
    config =
      values === undefined
        ? (first as pg.QueryConfig)
        : { ...(first as pg.QueryConfig), values: values as unknown[] };
  } else {
    throw new TypeError('pgpulse: query() needs SQL text or a { text, values? } config object');
  }
  return { text: config.text, config, plain, callback };
}

/**
 * Promise or callback, as pg does: with a callback nothing is returned. The callback runs
 * outside the promise chain, so a throw inside it surfaces as an uncaught exception (as in
 * pg) instead of an unhandled rejection. `noError` is what success passes as the error: pg's
 * client passes null, pg.Pool undefined.
 */
export function settle<T>(
  result: Promise<T>,
  callback: ((err: never, value?: T) => void) | undefined,
  noError: null | undefined,
): Promise<T> | undefined {
  if (!callback) return result;
  const call = callback as (err: unknown, value?: T) => void;
  result.then(
    (value) => process.nextTick(call, noError, value),
    (err: unknown) => process.nextTick(call, err),
  );
  return undefined;
}
