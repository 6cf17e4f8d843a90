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
export type {
  FailoverCandidate,
  FailoverCompleted,
  FailoverDeps,
  FailoverEvents,
  FailoverStarted,
  LostWindow,
  Promote,
  SeveralInstancesEvent,
  SplitBrainEvent,
} from './events.js';
export { IDENTITY_SQL, type IdentityRow, identityFromRow } from './identity.js';
export { FailoverManager } from './manager.js';
export { countInstances, identifyNode, promoteNode } from './node-actions.js';
export { fenced } from './read-checks.js';
