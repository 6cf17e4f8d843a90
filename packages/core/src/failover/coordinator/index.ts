import type { ResolvedEtcdCoordinatorConfig } from '../../config/index.js';
import { EtcdCoordinator } from './etcd.js';
import type { FailoverCoordinator } from './types.js';

export type { FailoverCoordinator, PromotionLease, PromotionRecord } from './types.js';

/** The coordinator `failover.coordinator` names (connects on first use). */
export function createCoordinator(
  config: ResolvedEtcdCoordinatorConfig | undefined,
): FailoverCoordinator | undefined {
  return config ? new EtcdCoordinator(config) : undefined;
}
