export {
  type ClusterOptions,
  type SandboxNode,
  type SandboxRole,
  type SettingValue,
  type WaitOptions,
  SandboxCluster,
  startCluster,
} from './cluster.js';
export { FaultProxy, type ProxyMode } from './proxy.js';
export { findInstallation, type PgInstallation } from './binaries.js';
