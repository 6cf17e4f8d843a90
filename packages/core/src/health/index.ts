export {
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
} from './circuit-breaker.js';
export { isAvailabilityError, isReadOnlyError } from './errors.js';
