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
   * The response header that carries the request's token when it wrote something (Fastify,
   * Hono and NestJS set it once the handler is done; Express when the handler calls
   * `sendToken`); default the same header, `false` for none.
   */
  readonly responseHeader?: string | false;
}

/** The first value of a header that may have been sent several times. */
export function firstValue(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.[0];
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
