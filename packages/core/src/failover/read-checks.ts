/** failover/'s step of the read pipeline (routing/read-pipeline.ts puts the steps in order). */

/** A former primary that does not follow the elected one yet serves no reads (nor writes). */
export function fenced(node: { readonly fenced: boolean }): string | undefined {
  return node.fenced ? 'fenced: a former primary, not following the new one' : undefined;
}
