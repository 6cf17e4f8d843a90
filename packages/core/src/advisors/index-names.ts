import { type IndexShape, indexNames, type QueryClient, qualified } from '../sql/index.js';
import { asRow, bool, num, str } from './sql.js';

/** Index names: what each candidate name names in the catalog now, and the one to build under. */

export interface RelationState {
  readonly oid: number;
  readonly kind: string;
  /** For an index: its table. */
  readonly tableOid: number | undefined;
  readonly valid: boolean;
  readonly building: boolean;
}

/** What each `"schema"."name"` names now (names absent from the map are free). */
export async function lookupNames(
  client: QueryClient,
  schema: string,
  names: readonly string[],
): Promise<Map<string, RelationState>> {
  const found = new Map<string, RelationState>();
  if (names.length === 0) return found;
  const result = await client.query(
    `SELECT r.name, c.oid::int8 AS oid, c.relkind::text AS kind, i.indrelid::int8 AS table_oid,
            COALESCE(i.indisvalid, false) AS valid,
            EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_create_index p
                     WHERE p.index_relid = c.oid) AS building
       FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS r(qualified, name)
       JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(r.qualified)
       LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid`,
    [names.map((n) => qualified(schema, n)), [...names]],
  );
  for (const raw of result.rows) {
    const r = asRow(raw);
    const name = str(r.name);
    const oid = num(r.oid);
    if (name === undefined || oid === undefined) continue;
    found.set(name, {
      oid,
      kind: str(r.kind) ?? '',
      tableOid: num(r.table_oid),
      valid: bool(r.valid),
      building: bool(r.building),
    });
  }
  return found;
}

/**
 * The name to create `shape` under: the plain name, else the hashed one, when free or held by
 * an invalid, idle index on the same table (a failed build pgpulse replaces or completes).
 */
export function pickName(
  shape: IndexShape,
  tableOid: number,
  taken: ReadonlyMap<string, RelationState>,
): string | undefined {
  const { plain, hashed } = indexNames(shape);
  for (const name of [plain, hashed]) {
    const state = taken.get(name);
    if (state === undefined) return name;
    // 'I': a partitioned index a failed run left; building again under its name resumes it.
    const index = state.kind === 'i' || state.kind === 'I';
    if (index && state.tableOid === tableOid && !state.valid && !state.building) {
      return name;
    }
  }
  return undefined;
}
