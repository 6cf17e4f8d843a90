export {
  type BreakerListener,
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
} from './circuit-breaker.js';
export { isAvailabilityError, isReadOnlyError } from './errors.js';
export { formatLsn, type Lsn, parseLsn } from './lsn.js';
export { HealthMonitor } from './monitor.js';
export {
  initialHealth,
  type MonitorEvents,
  type MonitoredNode,
  type NodeHealth,
} from './node-health.js';
export { currentPrimaryLsn } from './primary-lsn.js';
export { NodeProber, type ProbeResult } from './probe.js';
export {
  breakerOpen,
  failedProbes,
  lagging,
  notStandby,
  overScopeLagBudget,
  unprobed,
} from './read-checks.js';
