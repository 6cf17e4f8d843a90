import { BadTokenError, type Cluster, type InScope } from '@pgpulse/core';

/** The header a client sends its consistency token in, and gets a new one back in. */
export const DEFAULT_TOKEN_HEADER = 'x-pgpulse-token';

/** What every framework integration takes. */
export interface RequestContextOptions {
  /**
   * The request header carrying a token from an earlier response (read-your-writes across
   * requests: after a redirect, from another tab); default 'x-pgpulse-token'. A malformed
   * token reads as absent (the cluster emits 'bad-token').
   */
  readonly header?: string;
  /**
   * Where the integrations that can (Fastify, Hono) put the request's token when it wrote
   * something; default the same header, `false` for none.
   */
  readonly responseHeader?: string | false;
}

/**
 * Runs `fn` as a new pgpulse context (its own read-your-writes session) or, given a valid
 * token, as a context that has already seen the writes behind it.
 */
export function runWithToken<T>(
  cluster: Cluster,
  token: string | undefined,
  fn: () => T,
): InScope<T> {
  if (token) {
    let started = false;
    try {
      return cluster.withConsistencyToken(token, () => {
        started = true;
        return fn();
      });
    } catch (error) {
      // Only a token refused before `fn` ran falls back; an error from `fn` is the caller's.
      if (started || !(error instanceof BadTokenError)) throw error;
      if (cluster.listenerCount('bad-token') > 0) {
        cluster.emit('bad-token', { header: DEFAULT_TOKEN_HEADER, reason: error.message });
      }
    }
  }
  return cluster.context(fn);
}

/** The first value of a header that may have been sent several times. */
export function firstValue(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.[0];
}

/** The token to send back: '' when the request wrote nothing a replica may lack. */
export function tokenToReturn(cluster: Cluster): Promise<string> {
  return cluster.consistencyToken();
}

/** Resolved header names (lower case, as Node gives them). */
export function headerNames(options: RequestContextOptions): {
  readonly request: string;
  readonly response: string | undefined;
} {
  const request = (options.header ?? DEFAULT_TOKEN_HEADER).toLowerCase();
  const response =
    options.responseHeader === false
      ? undefined
      : (options.responseHeader ?? request).toLowerCase();
  return { request, response };
}
