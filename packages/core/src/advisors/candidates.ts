import { type IndexShape, indexNames, type QueryClient, type SortDirection } from '../sql/index.js';
import { type IndexInfo, loadIndexes, resolveTable } from './catalog.js';
import { coveringIndex } from './coverage.js';
import { choosePredicate } from './partial.js';
import type { RelationUse } from './plan-use.js';

/**
 * Index candidates for one statement, from how it uses each relation (plan-use.ts), in the
 * order btree serves them: equality columns first, then one range or the ORDER BY columns
 * (directions kept); single columns and pairs as dexter tries them; a partial index when a
 * constant picks a rare value of a low-cardinality column; INCLUDE when the remaining columns
 * the statement needs are few, for an index-only scan. Candidates an existing valid index
 * already serves are left out: it is already there for the planner to use.
 */

export interface Candidate {
  readonly shape: IndexShape;
  readonly tableOid: number;
  readonly use: RelationUse;
  /** Fraction of the table's rows the partial predicate keeps (1 for a full index). */
  readonly fraction: number;
  /** Why it was proposed: 'equality', 'range', 'join', 'sort', 'partial', 'covering'... */
  readonly origin: string;
}

/** Wider keys rarely pay for their upkeep; INCLUDE lists likewise. */
const MAX_KEYS = 3;
const MAX_INCLUDE = 2;

export interface TableFacts {
  readonly oid: number;
  readonly kind: string;
  /** Live columns of the table. */
  readonly columns: number;
  readonly indexes: readonly IndexInfo[];
}

/** The exact table (schema and name from the plan, resolved by to_regclass, spelled back). */
export async function tableFacts(
  client: QueryClient,
  schema: string,
  table: string,
): Promise<TableFacts | undefined> {
  const found = await resolveTable(client, schema, table);
  if (found === undefined) return undefined;
  const { oid, kind, columns } = found;
  const indexes = (await loadIndexes(client, { schema, tables: [table] })).filter(
    (i) => i.tableOid === oid,
  );
  return { oid, kind, columns, indexes };
}

function key(shape: IndexShape): string {
  return JSON.stringify([
    shape.schema,
    shape.table,
    shape.columns,
    shape.order ?? [],
    shape.predicate ?? null,
    shape.include ?? [],
  ]);
}

/** An existing valid index serves the shape (leading keys, and INCLUDE columns held). */
export function servedBy(facts: TableFacts, shape: IndexShape): IndexInfo | undefined {
  const names = indexNames(shape);
  return coveringIndex(facts.indexes, facts.oid, shape, [names.plain, names.hashed]);
}

function uniq(list: readonly string[]): string[] {
  return [...new Set(list)];
}

/** Candidates for one relation of the statement. */
export async function relationCandidates(
  client: QueryClient,
  use: RelationUse,
  facts: TableFacts,
): Promise<Candidate[]> {
  if (!['r', 'm'].includes(facts.kind)) return [];
  const out = new Map<string, Candidate>();
  const add = (
    columns: readonly string[],
    origin: string,
    extra: Partial<Pick<IndexShape, 'order' | 'predicate' | 'include'>> = {},
    fraction = 1,
  ): void => {
    const cols = columns.slice(0, MAX_KEYS);
    if (cols.length === 0 || new Set(cols).size !== cols.length) return;
    const order = extra.order?.slice(0, cols.length);
    const shape: IndexShape = {
      schema: use.schema,
      table: use.table,
      columns: cols,
      ...(order?.some((d) => d === 'desc') ? { order } : {}),
      ...(extra.predicate === undefined ? {} : { predicate: extra.predicate }),
      ...(extra.include === undefined || extra.include.length === 0
        ? {}
        : { include: extra.include }),
    };
    if (servedBy(facts, shape) !== undefined) return;
    const id = key(shape);
    if (!out.has(id)) out.set(id, { shape, tableOid: facts.oid, use, fraction, origin });
  };
  const eq = uniq([...use.equality, ...use.joins]);
  const range = use.range.filter((c) => !eq.includes(c));
  const sort = use.sort;
  const asc = (n: number): SortDirection[] => Array.from({ length: n }, () => 'asc');

  for (const c of use.equality) add([c], 'equality');
  for (const c of use.joins) add([c], 'join');
  for (const c of range) add([c], 'range');
  // Join keys stand alone (the nested loop's inner lookup); pairs are of filter columns.
  if (use.equality.length > 1) add(use.equality, 'equality');
  for (const a of use.equality) {
    for (const b of [...use.equality, ...range]) if (a !== b) add([a, b], 'pair');
  }
  if (range.length > 0) add([...use.equality, range[0]!], 'equality+range');
  if (sort !== undefined) {
    const sortCols = sort.columns.filter((c) => !use.equality.includes(c));
    add(sortCols, 'sort', {
      order: sort.order.filter((_, i) => !use.equality.includes(sort.columns[i]!)),
    });
    if (use.equality.length > 0) {
      add([...use.equality, ...sortCols], 'equality+sort', {
        order: [
          ...asc(use.equality.length),
          ...sort.order.filter((_, i) => !use.equality.includes(sort.columns[i]!)),
        ],
      });
    }
  }
  if (use.group.length > 0) add(use.group, 'group');

  // Partial: a constant that picks a rare value of a low-cardinality column.
  const predicate = await choosePredicate(client, use.schema, use.table, use.constants);
  if (predicate !== undefined) {
    const p = { column: predicate.column, value: predicate.value };
    const restEq = use.equality.filter((c) => c !== p.column);
    if (sort !== undefined) {
      const idx = sort.columns.map((c, i) => ({ c, i })).filter(({ c }) => c !== p.column);
      add(
        [...restEq, ...idx.map(({ c }) => c)],
        'partial',
        { predicate: p, order: [...asc(restEq.length), ...idx.map(({ i }) => sort.order[i]!)] },
        predicate.fraction,
      );
    } else if (restEq.length > 0 || range.length > 0) {
      add([...restEq, ...range.slice(0, 1)], 'partial', { predicate: p }, predicate.fraction);
    } else {
      add([p.column], 'partial', { predicate: p }, predicate.fraction);
    }
  }

  // Covering: the best-ordered key list plus the few other columns the statement needs.
  const keyLists = [...out.values()]
    .filter((c) => c.shape.predicate === undefined)
    .map((c) => c.shape);
  for (const shape of use.heapNeeded ? [] : keyLists) {
    // Only output columns: a filter, join or sort column belongs in the keys, not INCLUDE.
    const keyish = new Set([...eq, ...range, ...(sort?.columns ?? []), ...shape.columns]);
    const rest = [...use.needed].filter((c) => !keyish.has(c));
    if (rest.length === 0 || rest.length > MAX_INCLUDE) continue;
    // An index holding most of the row is a second copy of the table, not a covering index.
    if ((shape.columns.length + rest.length) * 2 > facts.columns) continue;
    add(shape.columns, 'covering', {
      ...(shape.order ? { order: shape.order } : {}),
      include: rest.sort(),
    });
  }
  return [...out.values()];
}
