export {
  type ConsistencySession,
  currentScope,
  type InScope,
  newSession,
  type RouteScope,
  runInScope,
  type ScopeChanges,
  type ScopeTarget,
} from './scope.js';
