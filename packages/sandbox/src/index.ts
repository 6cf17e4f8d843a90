export { findInstallation, type PgInstallation } from './binaries.js';
export {
  type ClusterOptions,
  SandboxCluster,
  type SandboxNode,
  type SandboxRole,
  type SettingValue,
  startCluster,
  type WaitOptions,
} from './cluster.js';
export { FaultProxy, type ProxyMode } from './proxy.js';
