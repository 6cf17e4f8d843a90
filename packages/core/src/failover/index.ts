export {
  type FailoverCandidate,
  type FailoverCompleted,
  type FailoverEvents,
  FailoverManager,
  type FailoverStarted,
  type LostWindow,
  type Promote,
} from './manager.js';
