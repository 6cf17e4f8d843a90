import type { Cluster } from '@pgpulse/core';
import type { MiddlewareHandler } from 'hono';
import { headerNames, type RequestContextOptions } from './request.js';

/**
 * Hono middleware: every request is its own pgpulse context, joined to the writes behind a
 * token the client sent back, and a request that wrote gets its token in the response header.
 * `app.use(pgpulse(cluster))`. Needs a runtime with AsyncLocalStorage (Node.js, Bun, Deno).
 */
export function pgpulse(cluster: Cluster, options: RequestContextOptions = {}): MiddlewareHandler {
  const { request, response } = headerNames(options);
  return async (c, next) => {
    await cluster.requestContext(
      c.req.header(request),
      async () => {
        await next();
        if (response === undefined) return;
        const token = await cluster.consistencyToken();
        if (token) c.header(response, token);
      },
      request,
    );
  };
}
