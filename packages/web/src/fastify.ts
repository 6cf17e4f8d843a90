import type { Cluster } from '@pgpulse/core';
import type { FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { firstValue, headerNames, type RequestContextOptions } from './request.js';

/** What the Fastify plugin takes: the cluster, and the token headers (RequestContextOptions). */
export interface PgPulseFastifyOptions extends RequestContextOptions {
  /** The cluster each request's context belongs to. */
  readonly cluster: Cluster;
}

const plugin: FastifyPluginCallback<PgPulseFastifyOptions> = (app, options, done) => {
  const { cluster } = options;
  const { request, response } = headerNames(options);
  // done() inside the context: Fastify runs the rest of the request (hooks, handler, onSend)
  // from this call, so they all see it.
  app.addHook('onRequest', (req, _reply, next) => {
    cluster.requestContext(firstValue(req.headers[request]), () => next(), request);
  });
  if (response !== undefined) {
    app.addHook('onSend', async (_req, reply, payload) => {
      const token = await cluster.consistencyToken();
      if (token) reply.header(response, token);
      return payload;
    });
  }
  done();
};

/**
 * Fastify plugin: every request is its own pgpulse context, joined to the writes behind a
 * token the client sent back, and a request that wrote gets its token in the response header.
 * `await app.register(pgpulse, { cluster })`. Applies to every route (not encapsulated).
 */
export const pgpulse = fp(plugin, { name: '@pgpulse/web', fastify: '5.x' });
