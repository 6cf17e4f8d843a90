/**
 * End-of-run checks made directly on PostgreSQL, not through pgpulse: which node is the
 * primary now, whether every acknowledged write is on it, and whether the cash of all accounts
 * still adds up.
 */
import type { SandboxCluster } from '@pgpulse/sandbox';
import { ACCOUNTS, OPENING_BALANCE } from './schema.js';

export interface Verification {
  /** The sandbox name of the node that is out of recovery; undefined when there is none. */
  readonly primary: string | undefined;
  readonly acknowledged: number;
  readonly lost: number;
  /** Up to 10 ids of lost writes. */
  readonly missing: readonly string[];
  readonly cash: { readonly expected: number; readonly actual: number };
  /** Why nothing could be checked (no single writable node). */
  readonly error?: string;
}

export async function findPrimary(sandbox: SandboxCluster): Promise<string> {
  const writable: string[] = [];
  for (const node of sandbox.all) {
    if (!node.running) continue;
    try {
      const [row] = await sandbox.query<{ recovery: boolean }>(
        node.name,
        'SELECT pg_is_in_recovery() AS recovery',
      );
      if (row?.recovery === false) writable.push(node.name);
    } catch {
      // not answering: not the primary
    }
  }
  if (writable.length !== 1) {
    throw new Error(
      `expected exactly one writable node at the end, found ${writable.length} (${writable.join(', ')})`,
    );
  }
  return writable[0]!;
}

export async function verify(
  sandbox: SandboxCluster,
  acknowledgedIds: readonly string[],
): Promise<Verification> {
  let primary: string;
  try {
    primary = await findPrimary(sandbox);
  } catch (error) {
    // Nothing to check against: count every acknowledged write as not verified.
    return {
      primary: undefined,
      acknowledged: acknowledgedIds.length,
      lost: acknowledgedIds.length,
      missing: acknowledgedIds.slice(0, 10),
      cash: { expected: ACCOUNTS * OPENING_BALANCE, actual: Number.NaN },
      error: error instanceof Error ? error.message : String(error),
    };
  }
  const missingRows = await sandbox.query<{ id: string }>(
    primary,
    `SELECT a.id::text AS id FROM unnest($1::bigint[]) AS a(id)
     WHERE NOT EXISTS (SELECT 1 FROM trades t WHERE t.id = a.id)
     ORDER BY a.id`,
    [acknowledgedIds],
  );
  const [cash] = await sandbox.query<{ total: string }>(
    primary,
    'SELECT coalesce(sum(balance), 0)::text AS total FROM accounts',
  );
  return {
    primary,
    acknowledged: acknowledgedIds.length,
    lost: missingRows.length,
    missing: missingRows.slice(0, 10).map((r) => r.id),
    cash: { expected: ACCOUNTS * OPENING_BALANCE, actual: Number(cash?.total ?? 0) },
  };
}
