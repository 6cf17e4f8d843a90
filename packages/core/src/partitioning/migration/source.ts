import { PartitioningError } from '../../errors/index.js';
import { type QueryClient, quoteIdent } from '../../sql/index.js';
import { record } from '../inspect.js';
import { qualified } from '../sql.js';
import type { TimeKeyType } from '../time.js';
import { MIRROR_TRIGGER, TRUNCATE_TRIGGER } from './triggers.js';

/**
 * What the online migration needs to know about the plain table it converts, read from the
 * catalog by exact name (bound parameters against `nspname` / `relname`, never through the
 * search_path), and every reason it cannot be converted, as a PartitioningError that says how
 * to fix it.
 */

export interface SourceColumn {
  readonly name: string;
  /** `format_type`, e.g. `timestamp with time zone`, for casts of keyset values. */
  readonly type: string;
  /** GENERATED ALWAYS AS (...) STORED: computed by PostgreSQL, never copied. */
  readonly generated: boolean;
}

export interface SourceTable {
  readonly oid: string;
  readonly schema: string;
  readonly table: string;
  readonly persistence: string;
  readonly tablespace: string | undefined;
  /** Every stored column, in attnum order. */
  readonly columns: readonly SourceColumn[];
  /** The primary key's columns, in index order: the keyset of the copy and its conflict target. */
  readonly rowKey: readonly string[];
  readonly timeKey: TimeKeyType;
  /** Sequences of serial columns (owned by a column of this table): ownership moves at the swap. */
  readonly ownedSequences: readonly { readonly sequence: string; readonly column: string }[];
  /** Identity columns: their sequence's value is carried to the new table's at the swap. */
  readonly identityColumns: readonly string[];
  /** Outbound foreign keys, recreated on the partitioned table: name and definition. */
  readonly foreignKeys: readonly { readonly name: string; readonly definition: string }[];
  readonly comment: string | undefined;
  /** Owner role, and privileges as GRANT statements' pieces (from `aclexplode(relacl)`). */
  readonly owner: string;
  readonly grants: readonly {
    readonly grantee: string | null;
    readonly privilege: string;
    readonly grantable: boolean;
  }[];
}

const TABLE_SQL = `
SELECT c.oid::text AS oid, c.relkind::text AS kind, c.relpersistence::text AS persistence,
       ts.spcname AS tablespace, c.relrowsecurity AS rls, pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       pg_catalog.obj_description(c.oid, 'pg_class') AS comment,
       EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid) AS inherits
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid = c.reltablespace
 WHERE n.nspname = $1 AND c.relname = $2`;

const COLUMNS_SQL = `
SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, a.attgenerated <> '' AS generated, a.attidentity <> '' AS identity,
       CASE a.atttypid WHEN 'pg_catalog.timestamptz'::pg_catalog.regtype THEN 'timestamptz'
                       WHEN 'pg_catalog.timestamp'::pg_catalog.regtype THEN 'timestamp'
                       WHEN 'pg_catalog.date'::pg_catalog.regtype THEN 'date' END AS time_key
  FROM pg_catalog.pg_attribute a
 WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum`;

/** Unique indexes (constraint or not) and exclusion constraints, with their key columns. */
const UNIQUE_SQL = `
SELECT ic.relname AS index, con.conname AS constraint, con.contype::text AS contype,
       i.indisprimary AS is_primary, i.indisunique AS is_unique,
       i.indpred IS NOT NULL OR i.indexprs IS NOT NULL AS partial_or_expr,
       ARRAY(SELECT a.attname FROM pg_catalog.unnest(i.indkey[0:i.indnkeyatts - 1])
               WITH ORDINALITY AS k(attnum, pos)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              ORDER BY k.pos)::text[] AS columns
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
 WHERE i.indrelid = $1::oid AND (i.indisunique OR con.contype = 'x')
 ORDER BY i.indisprimary DESC, ic.relname`;

const DEPENDENTS_SQL = `
SELECT
  ARRAY(SELECT con.conname || ' on ' || pg_catalog.quote_ident(rn.nspname) || '.' || pg_catalog.quote_ident(r.relname)
          FROM pg_catalog.pg_constraint con
          JOIN pg_catalog.pg_class r ON r.oid = con.conrelid
          JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
         WHERE con.contype = 'f' AND con.confrelid = $1::oid)::text[] AS referenced_by,
  ARRAY(SELECT DISTINCT pg_catalog.quote_ident(vn.nspname) || '.' || pg_catalog.quote_ident(v.relname)
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_rewrite rw ON rw.oid = d.objid AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
          JOIN pg_catalog.pg_class v ON v.oid = rw.ev_class
          JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
         WHERE d.refobjid = $1::oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass)::text[] AS views,
  ARRAY(SELECT t.tgname FROM pg_catalog.pg_trigger t
         WHERE t.tgrelid = $1::oid AND NOT t.tgisinternal AND t.tgname <> ALL ($2::text[]))::text[] AS triggers,
  ARRAY(SELECT con.conname FROM pg_catalog.pg_constraint con
         WHERE con.conrelid = $1::oid AND con.contype = 'f' ORDER BY con.conname)::text[] AS fk_names,
  ARRAY(SELECT pg_catalog.pg_get_constraintdef(con.oid) FROM pg_catalog.pg_constraint con
         WHERE con.conrelid = $1::oid AND con.contype = 'f' ORDER BY con.conname)::text[] AS fk_bodies,
  ARRAY(SELECT sn.nspname FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
          JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
         WHERE d.refobjid = $1::oid AND d.deptype = 'a' AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
         ORDER BY s.relname)::text[] AS seq_schemas,
  ARRAY(SELECT s.relname FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
         WHERE d.refobjid = $1::oid AND d.deptype = 'a' AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
         ORDER BY s.relname)::text[] AS seq_names,
  ARRAY(SELECT a.attname FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
          JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.refobjid = $1::oid AND d.deptype = 'a' AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
         ORDER BY s.relname)::text[] AS seq_columns`;

const GRANTS_SQL = `
SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee) END AS grantee,
       a.privilege_type AS privilege, a.is_grantable AS grantable
  FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
 WHERE c.oid = $1::oid AND a.grantee <> c.relowner`;

/** A text[] column (every array above is cast to text[], which pg parses). */
const strings = (value: unknown): string[] => (Array.isArray(value) ? value.map(String) : []);

/**
 * The plain table `schema.table`, checked for an online migration to range partitions on
 * `column`. Throws PartitioningError ('table-not-found', 'unsupported-table',
 * 'key-not-in-unique', 'strategy-mismatch') naming what is in the way and the fix.
 */
export async function readSource(
  client: QueryClient,
  schema: string,
  table: string,
  column: string,
  options: { readonly hasDefault: boolean },
): Promise<SourceTable> {
  const name = qualified(schema, table);
  const unsupported = (message: string) =>
    new PartitioningError(
      'unsupported-table',
      name,
      `${name} cannot be migrated online: ${message}`,
    );
  const row = record((await client.query(TABLE_SQL, [schema, table])).rows[0]);
  if (row.oid === undefined) {
    throw new PartitioningError('table-not-found', name, `Table ${name} does not exist.`);
  }
  const oid = String(row.oid);
  if (row.kind !== 'r') {
    throw unsupported('it is not a plain table (only tables of relkind r are converted).');
  }
  if (row.persistence === 't') throw unsupported('it is a temporary table.');
  if (row.inherits === true) {
    throw unsupported(
      'it takes part in table inheritance; detach it (ALTER TABLE ... NO INHERIT) first.',
    );
  }
  if (row.rls === true) {
    throw unsupported(
      'it has row-level security enabled; policies are not carried over. Disable it, migrate, ' +
        'then recreate the policies on the partitioned table.',
    );
  }

  const columns = (await client.query(COLUMNS_SQL, [oid])).rows.map(record);
  const key = columns.find((c) => c.name === column);
  if (key === undefined) {
    throw new PartitioningError(
      'strategy-mismatch',
      name,
      `${name} has no column ${quoteIdent(column)} to partition by.`,
    );
  }
  const timeKey = key.time_key;
  if (timeKey !== 'timestamptz' && timeKey !== 'timestamp' && timeKey !== 'date') {
    throw new PartitioningError(
      'strategy-mismatch',
      name,
      `Range partitioning by interval needs a timestamptz, timestamp or date column; ` +
        `${quoteIdent(column)} of ${name} is ${String(key.type)}.`,
    );
  }
  if (key.not_null !== true && !options.hasDefault) {
    throw unsupported(
      `${quoteIdent(column)} may be NULL, and a range partition never holds a NULL key. Run ` +
        `ALTER TABLE ${name} ALTER COLUMN ${quoteIdent(column)} SET NOT NULL, or set ` +
        'default: true in the strategy (NULL keys then go to the DEFAULT partition).',
    );
  }

  const uniques = (await client.query(UNIQUE_SQL, [oid])).rows.map(record);
  const exclusion = uniques.find((u) => u.contype === 'x');
  if (exclusion !== undefined) {
    throw unsupported(
      `the exclusion constraint ${quoteIdent(String(exclusion.constraint))} is not carried over; ` +
        'drop it, migrate, then recreate it with the partition column in it.',
    );
  }
  const lacking = uniques.filter((u) => !strings(u.columns).includes(column));
  if (lacking.length > 0) {
    const first = lacking[0] ?? {};
    const cols = strings(first.columns);
    const what = (u: Record<string, unknown>) =>
      u.constraint === null || u.constraint === undefined
        ? `unique index ${quoteIdent(String(u.index))}`
        : `${u.is_primary === true ? 'primary key' : 'unique constraint'} ${quoteIdent(String(u.constraint))}`;
    const fix =
      first.constraint === null || first.constraint === undefined
        ? `CREATE UNIQUE INDEX ON ${name} (${[...cols, column].map(quoteIdent).join(', ')}), then DROP INDEX ${qualified(schema, String(first.index))}`
        : `ALTER TABLE ${name} DROP CONSTRAINT ${quoteIdent(String(first.constraint))}, ADD ${first.is_primary === true ? 'PRIMARY KEY' : 'UNIQUE'} (${[...cols, column].map(quoteIdent).join(', ')})`;
    throw new PartitioningError(
      'key-not-in-unique',
      name,
      `${name} cannot be partitioned by ${quoteIdent(column)}: the ${lacking.map(what).join(', ')} ` +
        `do${lacking.length === 1 ? 'es' : ''} not include it, and PostgreSQL enforces uniqueness ` +
        'per partition, so every primary key and unique constraint of a partitioned table must ' +
        `contain the partition column. Add it, e.g. ${fix} (uniqueness of the other columns alone ` +
        'is then no longer enforced).',
    );
  }
  const primary = uniques.find((u) => u.is_primary === true);
  if (primary === undefined) {
    throw unsupported(
      `it has no primary key; the copy walks and matches rows by it. Add one that includes ` +
        `${quoteIdent(column)}, e.g. ALTER TABLE ${name} ADD PRIMARY KEY (id, ${quoteIdent(column)}).`,
    );
  }

  // An interrupted migration's own triggers are not the table's: the migration removes them.
  const deps = record(
    (await client.query(DEPENDENTS_SQL, [oid, [MIRROR_TRIGGER, TRUNCATE_TRIGGER]])).rows[0],
  );
  const referencedBy = strings(deps.referenced_by);
  if (referencedBy.length > 0) {
    throw unsupported(
      `foreign keys point at it (${referencedBy.join(', ')}) and would keep pointing at the old ` +
        'table. Drop them, migrate, then recreate them against the partitioned table.',
    );
  }
  const views = strings(deps.views).filter((v) => v !== qualified(schema, table));
  if (views.length > 0) {
    throw unsupported(
      `views or rules depend on it (${views.join(', ')}) and would keep reading the old table. ` +
        'Drop them, migrate, then create them again.',
    );
  }
  const triggers = strings(deps.triggers);
  if (triggers.length > 0) {
    throw unsupported(
      `it has triggers (${triggers.map(quoteIdent).join(', ')}), which are not carried over. ` +
        'Drop them, migrate, then create them on the partitioned table.',
    );
  }
  const fkNames = strings(deps.fk_names);
  const fkBodies = strings(deps.fk_bodies);
  const seqSchemas = strings(deps.seq_schemas);
  const seqNames = strings(deps.seq_names);
  const seqColumns = strings(deps.seq_columns);
  const identityColumns = columns.filter((c) => c.identity === true).map((c) => String(c.name));
  const grants = (await client.query(GRANTS_SQL, [oid])).rows.map((raw) => {
    const g = record(raw);
    return {
      grantee: typeof g.grantee === 'string' ? g.grantee : null,
      privilege: String(g.privilege),
      grantable: g.grantable === true,
    };
  });
  return {
    oid,
    schema,
    table,
    persistence: String(row.persistence),
    tablespace: typeof row.tablespace === 'string' ? row.tablespace : undefined,
    columns: columns.map((c) => ({
      name: String(c.name),
      type: String(c.type),
      generated: c.generated === true,
    })),
    rowKey: strings(primary.columns),
    timeKey,
    ownedSequences: seqNames
      .map((s, i) => ({
        sequence: qualified(seqSchemas[i] ?? schema, s),
        column: seqColumns[i] ?? '',
      }))
      // deptype 'a': serial columns' sequences (an identity's own sequence is deptype 'i').
      .filter((s) => s.column !== ''),
    identityColumns,
    foreignKeys: fkNames.map((n, i) => ({ name: n, definition: fkBodies[i] ?? '' })),
    comment: typeof row.comment === 'string' ? row.comment : undefined,
    owner: String(row.owner),
    grants,
  };
}
