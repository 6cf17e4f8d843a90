export {
  type ConsistencySession,
  currentScope,
  deriveScope,
  type InScope,
  newSession,
  type RouteScope,
  runInScope,
  type ScopeChanges,
  type ScopeTarget,
} from './scope.js';
