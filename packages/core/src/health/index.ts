export {
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
} from './circuit-breaker.js';
export { isAvailabilityError, isReadOnlyError } from './errors.js';
export { formatLsn, type Lsn, parseLsn } from './lsn.js';
export {
  HealthMonitor,
  initialHealth,
  type MonitorEvents,
  type MonitoredNode,
  type NodeHealth,
} from './monitor.js';
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
