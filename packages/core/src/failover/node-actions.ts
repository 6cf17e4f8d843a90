/**
 * What a failover asks of one server: promote it, tell who it is, count the pgpulse instances
 * watching the primary. Each is one statement on the node's own pool, outside any caller's
 * scope and span.
 */

import type { ClusterNode } from '../topology/index.js';
import { untraced } from '../tracing/index.js';
import type { NodeIdentity } from './candidate.js';
import { IDENTITY_SQL, type IdentityRow, identityFromRow } from './identity.js';

/** How long `pg_promote` may wait for the standby to leave recovery. */
const PROMOTE_WAIT_S = 60;

/** Promotes a standby; rejects when it did not become writable within {@link PROMOTE_WAIT_S}. */
export function promoteNode(node: ClusterNode): Promise<void> {
  return untraced(async () => {
    const rows = await node.queryOnce<{ promoted: boolean }>(
      `SELECT pg_promote(true, ${PROMOTE_WAIT_S}) AS promoted`,
    );
    if (!rows[0]?.promoted)
      throw new Error(`pg_promote() on "${node.name}" did not finish within ${PROMOTE_WAIT_S} s`);
  });
}

/** The server's own identity (the failover's tie-break). */
export function identifyNode(node: ClusterNode): Promise<NodeIdentity> {
  return untraced(async () => {
    const row = (await node.queryOnce<IdentityRow>(IDENTITY_SQL))[0];
    if (!row) throw new Error(`"${node.name}" returned no identity row`);
    return identityFromRow(row, node.host);
  });
}

/**
 * Health connections of `applicationName` on the primary: one per pgpulse instance (each
 * instance's probes connect as `<applicationName>:health`). 0 when the primary is not up.
 */
export async function countInstances(
  primary: ClusterNode | undefined,
  applicationName: string,
): Promise<number> {
  if (!primary?.health.up) return 0;
  const rows = await untraced(() =>
    primary.queryOnce<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [`${applicationName}:health`],
    ),
  );
  return rows[0]?.n ?? 0;
}
