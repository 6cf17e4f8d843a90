/** How errors name a node: by its label, never by a connection string (no password). */

/** A configured node's role: the 'primary' or a 'replica'. */
export type NodeRole = 'primary' | 'replica';

/** What an error may say about a node: enough to find it, never its credentials. */
export interface NodeLabel {
  readonly name: string;
  readonly role: NodeRole;
  readonly host: string;
  readonly port: number;
}

/** A node as errors name it: `primary "primary" (host:port)`. */
export function describeNode(node: NodeLabel): string {
  return `${node.role} "${node.name}" (${node.host}:${node.port})`;
}
