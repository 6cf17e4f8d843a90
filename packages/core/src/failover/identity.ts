import type { ClusterNode } from '../topology/index.js';
import type { NodeIdentity } from './candidate.js';

/**
 * The server's own view of who it is: readable by any role on a standby and on a primary
 * (pg_control_system() is granted to PUBLIC). `inet_server_addr()` is NULL over a Unix socket.
 */
export const IDENTITY_SQL = `SELECT system_identifier::text AS system_id,
  host(inet_server_addr()) AS address,
  current_setting('port') AS port
FROM pg_control_system()`;

export interface IdentityRow {
  system_id: string;
  address: string | null;
  port: string;
}

/** `fallbackHost` is used only for a Unix-socket connection, where the server has no address. */
export function identityFromRow(row: IdentityRow, fallbackHost: string): NodeIdentity {
  return {
    systemId: row.system_id,
    address: `${row.address ?? fallbackHost.toLowerCase()}:${row.port}`,
  };
}

/**
 * Each node's identity, read once from the server; while the server cannot say, the configured
 * address stands in for it (not cached, so the next ask reads it again).
 */
export class NodeIdentities {
  readonly #known = new Map<ClusterNode, NodeIdentity>();

  constructor(private readonly identify: (node: ClusterNode) => Promise<NodeIdentity>) {}

  /** The node's identity (from the server when it answered once). */
  async of(node: ClusterNode): Promise<NodeIdentity> {
    const known = this.#known.get(node);
    if (known) return known;
    try {
      const identity = await this.identify(node);
      this.#known.set(node, identity);
      return identity;
    } catch {
      // Not cached: the configured address is a fallback only while the server cannot say.
      return { systemId: '', address: `${node.host.toLowerCase()}:${node.port}` };
    }
  }
}
