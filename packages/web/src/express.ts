import type { Cluster, ContextMiddleware } from '@pgpulse/core';
import { headerNames, type RequestContextOptions } from './request.js';

interface OutgoingResponse {
  setHeader(name: string, value: string): unknown;
}

/**
 * Express (4 and 5) and Connect middleware: every request is its own pgpulse context, joined
 * to the writes behind a token the client sent back. `app.use(pgpulse(cluster))`.
 */
export function pgpulse(cluster: Cluster, options: RequestContextOptions = {}): ContextMiddleware {
  // Core's own middleware, with the token header on by default.
  return cluster.middleware({ header: headerNames(options).request });
}

/**
 * Sets the response header to this request's token (when it wrote something), so the client
 * can send it back. Express sends headers synchronously, so call it before `res.send()`:
 * `await sendToken(cluster, res); res.json(order)`.
 */
export async function sendToken(
  cluster: Cluster,
  res: OutgoingResponse,
  options: RequestContextOptions = {},
): Promise<void> {
  const { response } = headerNames(options);
  if (response === undefined) return;
  const token = await cluster.consistencyToken();
  if (token) res.setHeader(response, token);
}
