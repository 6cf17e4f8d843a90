import { dropIndexSql } from '../sql/index.js';
import type { IndexInfo, IndexKey } from './catalog.js';

/** An index another index makes redundant. */
export interface DuplicateIndex {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  /** Key columns (or expressions) as the index definition prints them. */
  readonly columns: readonly string[];
  readonly definition: string;
  readonly sizeBytes: number;
  readonly unique: boolean;
  readonly coveredBy: {
    readonly name: string;
    readonly columns: readonly string[];
    readonly definition: string;
    readonly unique: boolean;
    readonly primary: boolean;
  };
  readonly reason: string;
  /** `DROP INDEX CONCURRENTLY IF EXISTS "schema"."name"`. */
  readonly sql: string;
}

function sameKey(a: IndexKey, b: IndexKey): boolean {
  return (
    a.attnum === b.attnum &&
    (a.attnum !== 0 || a.definition === b.definition) &&
    a.opclass === b.opclass &&
    a.collation === b.collation &&
    a.option === b.option
  );
}

/** Something depends on the index beyond speeding up reads: dropping it changes behaviour. */
export function isProtected(index: IndexInfo): boolean {
  return (
    index.unique ||
    index.primary ||
    index.exclusion ||
    index.replicaIdentity ||
    index.constraints.length > 0
  );
}

/** An index pgpulse could drop on its own with DROP INDEX CONCURRENTLY. */
export function isDroppable(index: IndexInfo): boolean {
  return (
    index.valid &&
    index.kind === 'i' &&
    !index.isPartition &&
    index.tableKind !== 'p' &&
    !index.primary &&
    !index.exclusion &&
    !index.replicaIdentity &&
    index.constraints.length === 0
  );
}

function keysIdentical(a: IndexInfo, b: IndexInfo): boolean {
  return a.keys.length === b.keys.length && a.keys.every((k, i) => sameKey(k, b.keys[i]!));
}

/**
 * pghero's rule, made precise with the catalog: `covering` makes `index` redundant when both
 * are valid indexes of one table with the same access method and the same predicate (both
 * partial with an equal predicate, or both not partial), and `index`'s keys (column or
 * expression, operator class, collation, direction) are a leading prefix of `covering`'s.
 * A prefix serves the same searches only in a btree; for other methods the keys must be
 * identical. INCLUDE columns of `index` must be among `covering`'s columns, or an index-only
 * scan would be lost.
 */
function covers(covering: IndexInfo, index: IndexInfo): boolean {
  if (covering.oid === index.oid || covering.tableOid !== index.tableOid) return false;
  if (!covering.valid || covering.method !== index.method) return false;
  if ((covering.predicate ?? null) !== (index.predicate ?? null)) return false;
  if (index.keys.length === 0 || index.keys.length > covering.keys.length) return false;
  if (index.method !== 'btree' && index.keys.length !== covering.keys.length) return false;
  if (!index.keys.every((k, i) => sameKey(k, covering.keys[i]!))) return false;
  const available = new Set([...covering.keys.map((k) => k.attnum), ...covering.include]);
  return index.include.every((attnum) => available.has(attnum));
}

function sameIncludes(a: IndexInfo, b: IndexInfo): boolean {
  const set = new Set(a.include);
  return a.include.length === b.include.length && b.include.every((n) => set.has(n));
}

/**
 * Whether `index` may be reported as redundant given a `covering` index. A unique index,
 * a primary key or an index a constraint needs enforces something a longer index does not:
 * only a plain unique index with an identical unique index beside it may go. Two identical
 * indexes of the same standing keep the one whose name sorts first (as pghero does).
 */
function mayDrop(index: IndexInfo, covering: IndexInfo): boolean {
  if (!isDroppable(index)) return false;
  const identical = keysIdentical(index, covering) && sameIncludes(index, covering);
  if (index.unique) {
    if (!covering.unique || !keysIdentical(index, covering)) return false;
    if (covering.nullsNotDistinct !== index.nullsNotDistinct) return false;
    if (!sameIncludes(index, covering)) return false;
    return isProtected(covering) && !isDroppable(covering) ? true : index.name > covering.name;
  }
  if (identical && !isProtected(covering)) return index.name > covering.name;
  return true;
}

function rank(a: IndexInfo, b: IndexInfo): number {
  return (
    b.keys.length - a.keys.length ||
    Number(isProtected(b)) - Number(isProtected(a)) ||
    b.include.length - a.include.length ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
}

function describe(index: IndexInfo): readonly string[] {
  return index.keys.map((k) => k.definition);
}

/** Indexes made redundant by another index of the same table, and what covers each. */
export function findDuplicates(indexes: readonly IndexInfo[]): DuplicateIndex[] {
  const byTable = new Map<number, IndexInfo[]>();
  for (const index of indexes) {
    const list = byTable.get(index.tableOid) ?? [];
    list.push(index);
    byTable.set(index.tableOid, list);
  }
  const out: DuplicateIndex[] = [];
  for (const index of indexes) {
    if (!isDroppable(index)) continue;
    const candidates = (byTable.get(index.tableOid) ?? [])
      .filter((other) => covers(other, index) && mayDrop(index, other))
      .sort(rank);
    const covering = candidates[0];
    if (covering === undefined) continue;
    const identical = keysIdentical(index, covering);
    const what = identical ? 'has the same key columns as' : 'has key columns that lead';
    const predicate = index.predicate === undefined ? '' : ' and the same predicate';
    out.push({
      schema: index.schema,
      table: index.table,
      name: index.name,
      columns: describe(index),
      definition: index.definition,
      sizeBytes: index.sizeBytes,
      unique: index.unique,
      coveredBy: {
        name: covering.name,
        columns: describe(covering),
        definition: covering.definition,
        unique: covering.unique,
        primary: covering.primary,
      },
      reason:
        `${index.name} (${describe(index).join(', ')}) ${what} ${covering.name} ` +
        `(${describe(covering).join(', ')}), with the same access method (${index.method})` +
        `${predicate}: ${covering.name} serves every search ${index.name} serves.`,
      sql: dropIndexSql(index.schema, index.name),
    });
  }
  return out.sort(
    (a, b) =>
      a.schema.localeCompare(b.schema) ||
      a.table.localeCompare(b.table) ||
      b.sizeBytes - a.sizeBytes,
  );
}
