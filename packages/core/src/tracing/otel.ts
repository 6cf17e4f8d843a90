import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';

// @opentelemetry/api costs ~25 ms to import, and without an SDK every call of it is a no-op.
// So it is loaded (synchronously, once) only when something needs it: an SDK or context
// manager registered in the API's global — which every copy of the API keeps under this
// symbol on globalThis, before or after createCluster — or a provider passed in the config.

/** The API's global registry (`@opentelemetry/api` 1.x): one entry per registered kind. */
const GLOBAL = Symbol.for('opentelemetry.js.api.1');

type Registered = 'trace' | 'metrics' | 'context';

let api: typeof OtelApi | undefined;

/** Whether an SDK (or a context manager) of this kind is registered in the API's global now. */
export function otelRegistered(kind: Registered): boolean {
  const global = (globalThis as { [GLOBAL]?: Partial<Record<Registered, unknown>> })[GLOBAL];
  return global?.[kind] !== undefined;
}

/** `@opentelemetry/api`, loaded on the first call. */
export function otelApi(): typeof OtelApi {
  api ??= createRequire(import.meta.url)('@opentelemetry/api') as typeof OtelApi;
  return api;
}

/** Whether this process has loaded the API through otelApi() (for the cold-start test). */
export function otelApiLoaded(): boolean {
  return api !== undefined;
}
