import { parseSync } from 'libpg-query';

/** Every entry: the write's tables are not known, so nothing cached can be trusted. */
export const ALL_TABLES = '*';

/** Statements that write no table data (transaction control, session settings, ...). */
const NO_TABLE_WRITES = new Set([
  'TransactionStmt',
  'VariableSetStmt',
  'VariableShowStmt',
  'ListenStmt',
  'UnlistenStmt',
  'NotifyStmt',
  'DeallocateStmt',
  'DiscardStmt',
  'LockStmt',
  'CheckPointStmt',
  'DeclareCursorStmt',
  'FetchStmt',
  'ClosePortalStmt',
]);

/**
 * The pseudo-table every write changes: a read that calls a function which may read tables
 * it does not name (a user's SQL function) depends on it.
 */
export const ANY_WRITE = '*any-write';

/** Built-in functions that read no table, so a read calling only these depends on its relations. */
const PURE_FUNCTIONS = new Set(
  'count sum avg min max lower upper coalesce nullif length char_length substring substr concat concat_ws abs round floor ceil ceiling trunc greatest least array_agg string_agg json_agg jsonb_agg json_build_object jsonb_build_object json_build_array jsonb_build_array row_to_json to_json to_jsonb jsonb_set array_length unnest row_number rank dense_rank lag lead first_value last_value extract date_part date_trunc to_char to_date to_number btrim ltrim rtrim trim replace split_part position strpos left right md5 generate_series bool_and bool_or every exists'.split(
    ' ',
  ),
);

/**
 * The tables a read depends on: its relations, plus ANY_WRITE when it calls other functions or
 * reads a view (`mayBeView`): a view's rows change with tables the read does not name.
 */
export function readDependencies(
  relations: readonly string[],
  functions: readonly string[],
  mayBeView: (relation: string) => boolean = () => false,
): string[] {
  const tables = relations.map(bareName);
  if (relations.some(mayBeView)) {
    tables.push(ANY_WRITE);
    return tables;
  }
  const pg = 'pg_catalog.';
  for (const fn of functions) {
    const name = fn.startsWith(pg) ? fn.slice(pg.length) : fn;
    if (!PURE_FUNCTIONS.has(name)) {
      tables.push(ANY_WRITE);
      break;
    }
  }
  return tables;
}

/** DML: the tables it names are the tables it can change. */
const DML = new Set([
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'SelectStmt',
  'TruncateStmt',
  'CopyStmt',
  'ExplainStmt',
]);

const MAX_REMEMBERED = 2000;
const remembered = new Map<string, readonly string[]>();

/**
 * The tables (bare names, as the parser spells them) a write may have changed, `[ALL_TABLES]`
 * when that cannot be told (DDL, a function call that may write anything, an unparseable
 * text), or `[]` for statements that change no table. Over-approximates: every relation a DML
 * statement names counts, read or written.
 */
export function writtenTables(sql: string, volatileCall: boolean): readonly string[] {
  if (volatileCall) return [ALL_TABLES];
  const known = remembered.get(sql);
  if (known) return known;
  const tables = analyze(sql);
  if (remembered.size >= MAX_REMEMBERED) remembered.clear();
  remembered.set(sql, tables);
  return tables;
}

function analyze(sql: string): readonly string[] {
  let parsed: { stmts?: readonly { stmt?: Record<string, unknown> }[] };
  try {
    parsed = parseSync(sql) as typeof parsed;
  } catch {
    return [ALL_TABLES];
  }
  const out = new Set<string>();
  for (const { stmt } of parsed.stmts ?? []) {
    const type = stmt ? Object.keys(stmt)[0] : undefined;
    if (type === undefined) continue;
    if (NO_TABLE_WRITES.has(type)) continue;
    if (!DML.has(type)) return [ALL_TABLES];
    const before = out.size;
    collect(stmt, out);
    if (out.size === before && type !== 'SelectStmt') return [ALL_TABLES];
  }
  return [...out];
}

function collect(node: unknown, out: Set<string>): void {
  if (Array.isArray(node)) {
    for (const item of node) collect(item, out);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  // A RangeVar, wrapped as a node ({ RangeVar: {...} }) or bare (UpdateStmt.relation).
  if (typeof record.relname === 'string') out.add(record.relname);
  for (const value of Object.values(record)) collect(value, out);
}

/** A read's relation as the classifier names it (`schema.name` or `name`) to its bare name. */
export function bareName(relation: string): string {
  const dot = relation.lastIndexOf('.');
  return dot < 0 ? relation : relation.slice(dot + 1);
}
