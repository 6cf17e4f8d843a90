/**
 * `@pgpulse/sandbox/testing`: what the pgpulse test suites share. Where statements ran
 * (`observe`), waits on a condition or an event instead of fixed sleeps, process checks and
 * small fixtures (`closeAfterEach`: what a test started, ended after it). Depends on nothing
 * of @pgpulse/core: the cluster `observe` reads is typed by its shape.
 */
export { sleep, type WaitUntilOptions, waitForRounds, waitUntil } from '../wait.js';
export { type Listenable, type NextEventOptions, nextEvent } from './events.js';
export { uniqueName } from './names.js';
export {
  type CountingCluster,
  literal,
  nodeAt,
  type Observation,
  type Observed,
  type ObservedFailure,
  type ObserveOptions,
  observe,
  observeFailure,
} from './observe.js';
export { type ZonedPools, zonedPools } from './pools.js';
export { alive } from './process.js';
export { type Closable, closeAfterEach } from './teardown.js';
export { objectForm } from './url.js';
