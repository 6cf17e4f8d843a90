export {
  type CandidateView,
  compareCandidates,
  identityKey,
  type NodeIdentity,
  pickCandidate,
} from './candidate.js';
export {
  createCoordinator,
  type FailoverCoordinator,
  type PromotionLease,
  type PromotionRecord,
} from './coordinator/index.js';
export { IDENTITY_SQL, type IdentityRow, identityFromRow } from './identity.js';
export {
  type FailoverCandidate,
  type FailoverCompleted,
  type FailoverDeps,
  type FailoverEvents,
  FailoverManager,
  type FailoverStarted,
  type LostWindow,
  type Promote,
  type SeveralInstancesEvent,
  type SplitBrainEvent,
} from './manager.js';
export { countInstances, identifyNode, promoteNode } from './node-actions.js';
export { fenced } from './read-checks.js';
