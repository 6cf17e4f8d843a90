/**
 * The advisory-locked maintenance session that index DDL (advisors/) and partition maintenance
 * (partitioning/) both run in: one held connection, `pg_try_advisory_lock` per table (keys from
 * `advisoryLockKey` in sql/), session timeouts set for the job and put back, and a connection
 * that may hold our state destroyed rather than reused.
 */
export { releaseAdvisoryLock, tryAdvisoryLock, type UnderLock, underAdvisoryLock } from './lock.js';
export {
  type MaintenanceSession,
  maintenanceSession,
  onLease,
  type SessionCheck,
} from './session.js';
export { type SessionSettings, withSessionSettings } from './settings.js';
