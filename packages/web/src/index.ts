/**
 * Framework-independent pieces; each framework has its own entry (`@pgpulse/web/express`,
 * `/fastify`, `/hono`, `/nestjs`) so an app loads only its own.
 */
export { jobToken, runJob } from './jobs.js';
export { DEFAULT_TOKEN_HEADER, type RequestContextOptions } from './request.js';
