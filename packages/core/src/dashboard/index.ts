export {
  createDashboardHandler,
  type DashboardHandler,
  type DashboardOptions,
  type DashboardServer,
  type ServeDashboardOptions,
  serveDashboard,
} from './handler.js';
export type {
  DashboardAdvice,
  DashboardNode,
  DashboardSlowQuery,
  DashboardSnapshot,
  PlanTreeNode,
} from './snapshot.js';
