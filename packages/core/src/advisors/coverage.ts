import type { IndexShape } from '../sql/index.js';
import type { ForeignKeyInfo, IndexInfo } from './catalog.js';

/** indoption bits: DESC (1) and NULLS FIRST (2); a DESC column defaults to NULLS FIRST. */
const DESC_NULLS_FIRST = 3;

/**
 * A valid btree index of the table that already serves `shape`: its leading key columns are
 * the shape's columns in order, with the same directions or all of them reversed (a btree
 * scans both ways). A partial index counts only when it is the one pgpulse made for this
 * shape (one of `ownNames`); any other predicate may not cover the statements.
 */
export function coveringIndex(
  indexes: readonly IndexInfo[],
  tableOid: number,
  shape: IndexShape,
  ownNames: readonly string[],
): IndexInfo | undefined {
  const wanted = shape.columns.map((_, i) => (shape.order?.[i] === 'desc' ? DESC_NULLS_FIRST : 0));
  return indexes.find((index) => {
    if (index.tableOid !== tableOid || !index.valid || index.method !== 'btree') return false;
    if (index.predicate !== undefined) {
      if (shape.predicate === undefined || !ownNames.includes(index.name)) return false;
    }
    if (index.keys.length < shape.columns.length) return false;
    if (shape.include !== undefined && shape.include.length > 0) {
      // INCLUDE asks for an index-only scan: the index must hold those columns too.
      const held = new Set([
        ...index.keys.flatMap((k) => (k.column === undefined ? [] : [k.column])),
        ...index.includeNames,
      ]);
      if (!shape.include.every((c) => held.has(c))) return false;
    }
    let flip: number | undefined;
    return shape.columns.every((column, i) => {
      const key = index.keys[i]!;
      if (key.attnum === 0 || key.column !== column) return false;
      const option = key.option & DESC_NULLS_FIRST;
      const f = option ^ wanted[i]!;
      if (f !== 0 && f !== DESC_NULLS_FIRST) return false;
      flip ??= f;
      return f === flip;
    });
  });
}

/**
 * Whether an index lets PostgreSQL find the referencing rows of a foreign key: its leading key
 * columns are the constraint's columns in any order, it is valid and not partial. A hash
 * index serves a one-column key.
 */
export function coversForeignKey(indexes: readonly IndexInfo[], fk: ForeignKeyInfo): boolean {
  const wanted = new Set(fk.attnums);
  const n = fk.attnums.length;
  return indexes.some((index) => {
    if (index.tableOid !== fk.tableOid || !index.valid || index.predicate !== undefined) {
      return false;
    }
    if (index.method !== 'btree' && !(index.method === 'hash' && n === 1)) return false;
    if (index.keys.length < n) return false;
    const leading = index.keys.slice(0, n).map((k) => k.attnum);
    return (
      leading.every((attnum) => attnum !== 0 && wanted.has(attnum)) && new Set(leading).size === n
    );
  });
}
