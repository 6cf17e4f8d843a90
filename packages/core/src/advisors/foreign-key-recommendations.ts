import { createIndexSql, type IndexShape, indexNames, type QueryClient } from '../sql/index.js';
import type { ForeignKeyInfo, IndexInfo } from './catalog.js';
import { coversForeignKey } from './coverage.js';
import { lookupNames, pickName, type RelationState } from './index-names.js';
import { clampPriority, count, type IndexRecommendation } from './recommendations.js';

/** A foreign key whose referencing columns no index leads with. */
export interface ForeignKeyGap {
  readonly schema: string;
  readonly table: string;
  readonly constraint: string;
  readonly columns: readonly string[];
  readonly referencedSchema: string;
  readonly referencedTable: string;
  /** The recommendation that closes the gap, also listed in `recommendations`. */
  readonly sql: string;
}

/**
 * Foreign keys no index serves, each with a recommendation on its columns (constraint
 * order). Without one, every DELETE or key UPDATE on the referenced table scans the
 * referencing table, and joins along the key cannot use an index. Priority 2, +1 from 10 000
 * referencing rows, +1 from 1 000 000, +1 when the referenced table sees deletes or updates.
 */
export async function foreignKeyRecommendations(
  client: QueryClient,
  foreignKeys: readonly ForeignKeyInfo[],
  indexes: readonly IndexInfo[],
): Promise<{ gaps: ForeignKeyGap[]; recommendations: IndexRecommendation[] }> {
  const gaps: ForeignKeyGap[] = [];
  const recommendations: IndexRecommendation[] = [];
  const seen = new Set<string>();
  const open = foreignKeys.filter((fk) => !coversForeignKey(indexes, fk));
  // One catalog look-up per schema for every candidate name.
  const wanted = new Map<string, string[]>();
  for (const fk of open) {
    const { plain, hashed } = indexNames({
      schema: fk.schema,
      table: fk.table,
      columns: fk.columns,
    });
    wanted.set(fk.schema, [...(wanted.get(fk.schema) ?? []), plain, hashed]);
  }
  const takenBySchema = new Map<string, Map<string, RelationState>>();
  for (const [schema, names] of wanted) {
    takenBySchema.set(schema, await lookupNames(client, schema, [...new Set(names)]));
  }
  for (const fk of open) {
    const shape: IndexShape = { schema: fk.schema, table: fk.table, columns: fk.columns };
    const name = pickName(shape, fk.tableOid, takenBySchema.get(fk.schema) ?? new Map());
    if (name === undefined) continue;
    const partitioned = fk.tableKind === 'p';
    const sql = createIndexSql(shape, name, partitioned ? 'only' : 'concurrently');
    gaps.push({
      schema: fk.schema,
      table: fk.table,
      constraint: fk.constraint,
      columns: fk.columns,
      referencedSchema: fk.referencedSchema,
      referencedTable: fk.referencedTable,
      sql,
    });
    const id = JSON.stringify([fk.tableOid, fk.columns]);
    if (seen.has(id)) continue;
    seen.add(id);
    const priority =
      2 +
      (fk.rows >= 10_000 ? 1 : 0) +
      (fk.rows >= 1_000_000 ? 1 : 0) +
      (fk.referencedChanges > 0 ? 1 : 0);
    recommendations.push({
      schema: fk.schema,
      table: fk.table,
      columns: fk.columns,
      name,
      reason:
        `Foreign key ${fk.constraint} on ${fk.schema}.${fk.table} (${fk.columns.join(', ')}) ` +
        `references ${fk.referencedSchema}.${fk.referencedTable} but no index leads with its ` +
        'columns: each DELETE or key UPDATE there scans this table, and joins along the key ' +
        'cannot use an index.',
      priority: clampPriority(priority),
      estimatedBenefit:
        `${count(fk.rows)} referencing rows are scanned per referenced-row delete today` +
        (fk.referencedChanges > 0
          ? `; ${count(fk.referencedChanges)} deletes/updates hit the referenced table so far.`
          : '.'),
      sql,
      source: 'foreign-key',
      ...(partitioned ? { partitioned: true } : {}),
    });
  }
  return { gaps, recommendations };
}
