export {
  type ConsistencySession,
  currentScope,
  newSession,
  type RouteScope,
  runInScope,
  type ScopeTarget,
} from './scope.js';
