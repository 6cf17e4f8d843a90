import { PartitioningError } from '../../errors/index.js';
import type { QueryClient } from '../../sql/index.js';
import { record } from '../inspect.js';
import { partitionName, qualified } from '../sql.js';

/**
 * The names the partitioned table should end up with. `CREATE TABLE ... (LIKE ...)` names the
 * shadow's indexes and identity sequences after the shadow (`events_pgpulse_new_pkey`); at the
 * swap each takes the name of its counterpart on the plain table, which becomes `<name>_old`.
 * Counterparts are paired by what they are: for indexes primary / unique and the definition
 * after `USING` (method, columns, INCLUDE, WITH, WHERE, identical for both tables), for
 * sequences the identity column they serve.
 */

export interface Rename {
  /** The plain table's object and its new name. */
  readonly original: string;
  readonly retired: string;
  /** The shadow's object, which takes `original`. */
  readonly shadow: string;
  readonly kind: 'index' | 'sequence';
}

const PAIRS_SQL = `
WITH idx AS (
  SELECT i.indrelid, c.relname::text AS name, i.indisprimary, i.indisunique,
         pg_catalog.regexp_replace(pg_catalog.pg_get_indexdef(c.oid), '^.*? USING ', '') AS body,
         row_number() OVER (PARTITION BY i.indrelid, i.indisprimary, i.indisunique,
                                         pg_catalog.regexp_replace(pg_catalog.pg_get_indexdef(c.oid), '^.*? USING ', '')
                            ORDER BY c.oid) AS nth
    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
   WHERE i.indrelid IN ($1::oid, $2::oid)
), seq AS (
  SELECT d.refobjid AS rel, a.attname::text AS col, s.relname::text AS name
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
   WHERE d.refobjid IN ($1::oid, $2::oid) AND d.deptype = 'i'
     AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
)
SELECT 'index' AS kind, o.name AS original, s.name AS shadow
  FROM idx o JOIN idx s ON s.indrelid = $2::oid AND o.indrelid = $1::oid
   AND s.indisprimary = o.indisprimary AND s.indisunique = o.indisunique
   AND s.body = o.body AND s.nth = o.nth
UNION ALL
SELECT 'sequence', o.name, s.name
  FROM seq o JOIN seq s ON s.rel = $2::oid AND o.rel = $1::oid AND s.col = o.col
 ORDER BY 1, 2`;

/**
 * The renames for the swap, after checking that every `<name>_old` is free. Objects without a
 * counterpart keep the name PostgreSQL gave them.
 */
export async function planRenames(
  client: QueryClient,
  schema: string,
  originalOid: string,
  shadowTable: string,
): Promise<Rename[]> {
  const shadowOid = record(
    (
      await client.query(
        `SELECT c.oid::text AS oid FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2`,
        [schema, shadowTable],
      )
    ).rows[0],
  ).oid;
  const rows = (await client.query(PAIRS_SQL, [originalOid, String(shadowOid)])).rows.map(record);
  const renames = rows.map(
    (r): Rename => ({
      kind: r.kind === 'sequence' ? 'sequence' : 'index',
      original: String(r.original),
      retired: partitionName(String(r.original), 'old'),
      shadow: String(r.shadow),
    }),
  );
  const taken = (
    await client.query(
      `SELECT c.relname::text AS name FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = ANY ($2::text[])`,
      [schema, renames.map((r) => r.retired)],
    )
  ).rows.map((r) => String(record(r).name));
  if (taken.length > 0) {
    throw new PartitioningError(
      'name-taken',
      qualified(schema, shadowTable),
      `The swap renames the plain table's indexes and sequences to <name>_old, and these are ` +
        `taken: ${taken.map((t) => qualified(schema, t)).join(', ')}. Rename or drop them.`,
    );
  }
  return renames;
}

/** The two statements of one rename, in the order the swap runs them (old name freed first). */
export function renameStatements(schema: string, renames: readonly Rename[]): string[] {
  const verb = (r: Rename) => (r.kind === 'index' ? 'ALTER INDEX' : 'ALTER SEQUENCE');
  return [
    ...renames.map(
      (r) =>
        `${verb(r)} ${qualified(schema, r.original)} RENAME TO ${qualified(undefined, r.retired)}`,
    ),
    ...renames.map(
      (r) =>
        `${verb(r)} ${qualified(schema, r.shadow)} RENAME TO ${qualified(undefined, r.original)}`,
    ),
  ];
}
