export { findInstallation, type PgInstallation } from './binaries.js';
export { SandboxCluster, type WaitOptions } from './cluster.js';
export type { ClusterOptions, SettingValue } from './config.js';
export type { SandboxNode, SandboxRole } from './node.js';
export { FaultProxy, type ProxyMode } from './proxy.js';
export { startCluster } from './start.js';
