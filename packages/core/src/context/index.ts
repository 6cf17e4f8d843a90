export {
  type ConsistencySession,
  currentScope,
  newSession,
  type RouteScope,
  runInScope,
  type ScopeChanges,
  type ScopeTarget,
} from './scope.js';
