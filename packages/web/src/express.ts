import type { Cluster } from '@pgpulse/core';
import {
  firstValue,
  headerNames,
  type RequestContextOptions,
  runWithToken,
  tokenToReturn,
} from './request.js';

interface IncomingRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}
interface OutgoingResponse {
  setHeader(name: string, value: string): unknown;
}

/**
 * Express (4 and 5) and Connect middleware: every request is its own pgpulse context, joined
 * to the writes behind a token the client sent back. `app.use(pgpulse(cluster))`.
 */
export function pgpulse(
  cluster: Cluster,
  options: RequestContextOptions = {},
): (req: IncomingRequest, res: OutgoingResponse, next: (err?: unknown) => void) => void {
  const { request } = headerNames(options);
  return (req, _res, next) => {
    runWithToken(cluster, firstValue(req.headers[request]), () => next());
  };
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
  const token = await tokenToReturn(cluster);
  if (token) res.setHeader(response, token);
}
