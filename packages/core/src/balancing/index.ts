export {
  AdaptiveBalancer,
  type Balancer,
  type BalancerCandidate,
  type BalancerOptions,
  createBalancer,
  LeastConnectionsBalancer,
  LOAD_BALANCING_STRATEGIES,
  type LoadBalancingStrategy,
  RoundRobinBalancer,
  WeightedBalancer,
} from './balancers.js';
export { Ewma } from './ewma.js';
