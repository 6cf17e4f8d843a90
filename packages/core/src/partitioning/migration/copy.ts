import { quoteIdent } from '../../sql/index.js';
import { createPartition, type DdlSession, inTransaction, withLockRetry } from '../ddl.js';
import { record } from '../inspect.js';
import type { WantedPartition } from '../plan.js';
import { qualified, quoteLiteral } from '../sql.js';
import type { SourceTable } from './source.js';
import { MIRROR_TRIGGER, TRUNCATE_TRIGGER } from './triggers.js';

/**
 * The first half of the online migration, while the application keeps using the plain table:
 * the partitioned table beside it (its "shadow"), a row trigger on the plain table that mirrors
 * every insert, update and delete into the shadow, and the copy of the rows that were already
 * there, in batches walked by primary key.
 *
 * Why a mirror and not pg_partman's "attach the old table as the DEFAULT partition, then move
 * rows out": PostgreSQL refuses to attach a partition whose range the DEFAULT partition holds
 * rows of, and checks it by scanning the whole DEFAULT partition under an ACCESS EXCLUSIVE lock,
 * once per partition created; every writer whose rows land in the DEFAULT partition (today's,
 * until today's partition exists) waits for each scan. With the mirror, the writers are held
 * only while the trigger is created and during the swap, both catalog-only.
 *
 * Correctness with concurrent writers (READ COMMITTED):
 * - the trigger is created under SHARE ROW EXCLUSIVE, which waits for every open writing
 *   transaction, so each write either committed before it (and the copy sees the row) or runs
 *   the trigger;
 * - each copy batch reads its rows `FOR SHARE`: a row being updated or deleted is copied after
 *   that transaction ends, in its latest version (or not at all), and a later update waits for
 *   the batch, then its trigger replaces the copied row;
 * - `ON CONFLICT DO NOTHING` skips rows the trigger already put there.
 */

/** The shadow's names: the partitioned table, the trigger function and its two triggers. */
export interface ShadowNames {
  readonly table: string;
  readonly mirrorFunction: string;
}

const LIKE =
  'INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING IDENTITY ' +
  'INCLUDING STORAGE INCLUDING COMMENTS INCLUDING COMPRESSION INCLUDING STATISTICS ' +
  'INCLUDING INDEXES';

const stored = (source: SourceTable) => source.columns.filter((c) => !c.generated);
const list = (names: readonly string[], prefix = '') =>
  names.map((n) => `${prefix}${quoteIdent(n)}`).join(', ');

/**
 * Creates the partitioned shadow: the plain table's columns, defaults (a serial column keeps
 * using the same sequence), identity, CHECK and NOT NULL constraints, indexes (partitioned),
 * outbound foreign keys, comment, owner and privileges; then its partitions.
 */
export async function createShadow(
  session: DdlSession,
  source: SourceTable,
  column: string,
  names: ShadowNames,
  partitions: readonly WantedPartition[],
): Promise<void> {
  const original = qualified(source.schema, source.table);
  const shadow = qualified(source.schema, names.table);
  const unlogged = source.persistence === 'u' ? 'UNLOGGED ' : '';
  const tablespace =
    source.tablespace === undefined ? '' : ` TABLESPACE ${quoteIdent(source.tablespace)}`;
  const statements = [
    `CREATE ${unlogged}TABLE ${shadow} (LIKE ${original} ${LIKE}) PARTITION BY RANGE (${quoteIdent(column)})${tablespace}`,
    ...source.foreignKeys.map(
      (fk) => `ALTER TABLE ${shadow} ADD CONSTRAINT ${quoteIdent(fk.name)} ${fk.definition}`,
    ),
  ];
  if (source.comment !== undefined) {
    statements.push(`COMMENT ON TABLE ${shadow} IS ${quoteLiteral(source.comment)}`);
  }
  const current = record(
    (await session.client.query('SELECT current_user::text AS me')).rows[0],
  ).me;
  if (source.owner !== current) {
    statements.push(`ALTER TABLE ${shadow} OWNER TO ${quoteIdent(source.owner)}`);
  }
  for (const g of source.grants) {
    const grantee = g.grantee === null ? 'PUBLIC' : quoteIdent(g.grantee);
    statements.push(
      `GRANT ${g.privilege} ON ${shadow} TO ${grantee}${g.grantable ? ' WITH GRANT OPTION' : ''}`,
    );
  }
  await withLockRetry(session, () => inTransaction(session, statements));
  const ref = {
    schema: source.schema,
    table: names.table,
    persistence: source.persistence,
    tablespace: source.tablespace,
  };
  for (const p of partitions) await createPartition(session, ref, p.name, p.clause);
}

/** A dollar-quote tag that does not occur in `body`. */
function dollarTag(body: string): string {
  let tag = '$pgpulse$';
  for (let n = 1; body.includes(tag); n++) tag = `$pgpulse${n}$`;
  return tag;
}

/**
 * The trigger function and the triggers: AFTER each row change, the same change on the shadow;
 * BEFORE TRUNCATE, an error (a TRUNCATE would not reach the shadow). Returns how long the
 * SHARE ROW EXCLUSIVE lock took, wait included: writers are held that long.
 */
export async function installMirror(
  session: DdlSession,
  source: SourceTable,
  names: ShadowNames,
  lockTimeoutMs: number,
): Promise<number> {
  const original = qualified(source.schema, source.table);
  const shadow = qualified(source.schema, names.table);
  const fn = qualified(source.schema, names.mirrorFunction);
  const cols = stored(source).map((c) => c.name);
  const match = (row: string) =>
    source.rowKey.map((k) => `${quoteIdent(k)} = ${row}.${quoteIdent(k)}`).join(' AND ');
  const insert = `INSERT INTO ${shadow} (${list(cols)}) OVERRIDING SYSTEM VALUE VALUES (${list(cols, 'NEW.')});`;
  const body = `
BEGIN
  IF TG_OP = 'INSERT' THEN
    ${insert}
  ELSIF TG_OP = 'UPDATE' THEN
    DELETE FROM ${shadow} WHERE ${match('OLD')};
    ${insert}
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM ${shadow} WHERE ${match('OLD')};
  ELSE
    RAISE EXCEPTION 'pgpulse is migrating % to partitions: TRUNCATE is refused until it ends', ${quoteLiteral(original)};
  END IF;
  RETURN NULL;
END`;
  const tag = dollarTag(body);
  const started = performance.now();
  await withLockRetry(session, () =>
    inTransaction(
      session,
      [
        `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS ${tag}${body}${tag}`,
        `CREATE TRIGGER ${quoteIdent(MIRROR_TRIGGER)} AFTER INSERT OR UPDATE OR DELETE ON ${original} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
        `CREATE TRIGGER ${quoteIdent(TRUNCATE_TRIGGER)} BEFORE TRUNCATE ON ${original} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`,
      ],
      lockTimeoutMs,
    ),
  );
  return performance.now() - started;
}

/** How far the copy has come, after each batch (`MigrationOptions.onProgress`). */
export interface MigrationProgress {
  /** Rows read from the plain table so far. */
  readonly rowsRead: number;
  /** Rows written to the partitioned table by the copy (the trigger wrote the others). */
  readonly rowsCopied: number;
  readonly batches: number;
}

/**
 * Copies the rows already in the plain table, `batchSize` at a time in primary-key order up to
 * the newest key when the trigger was in place, each batch one statement in its own
 * transaction (lock waits and deadlocks retried).
 */
export async function copyRows(
  session: DdlSession,
  source: SourceTable,
  names: ShadowNames,
  batchSize: number,
  onBatch: (progress: MigrationProgress) => void,
): Promise<MigrationProgress> {
  const original = qualified(source.schema, source.table);
  const shadow = qualified(source.schema, names.table);
  const cols = list(stored(source).map((c) => c.name));
  const key = list(source.rowKey);
  const types = source.rowKey.map((k) => source.columns.find((c) => c.name === k)?.type ?? 'text');
  const n = source.rowKey.length;
  const values = (from: number) => types.map((t, i) => `$${from + i}::${t}`).join(', ');
  const descending = source.rowKey.map((k) => `${quoteIdent(k)} DESC`).join(', ');
  const lastKey = `SELECT ARRAY[${source.rowKey.map((k) => `${quoteIdent(k)}::text`).join(', ')}]`;
  // The newest key once the trigger is in place: every row committed before it is at or below
  // it, and every row written since is the trigger's. Without this bound the copy would chase
  // a busy writer's new rows, and might never end.
  const bound = record(
    (
      await session.client.query(
        `${lastKey} AS last FROM ${original} ORDER BY ${descending} LIMIT 1`,
      )
    ).rows[0],
  ).last;
  let progress: MigrationProgress = { rowsRead: 0, rowsCopied: 0, batches: 0 };
  if (!Array.isArray(bound)) return progress;
  const upTo = bound.map(String);
  const batchSql = (first: boolean) => `
WITH batch AS (
  SELECT ${cols} FROM ${original}
   WHERE (${key}) <= (${values(2)}) ${first ? '' : `AND (${key}) > (${values(2 + n)})`}
   ORDER BY ${key} LIMIT $1 FOR SHARE
), copied AS (
  INSERT INTO ${shadow} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM batch
  ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM batch)::int AS read, (SELECT count(*) FROM copied)::int AS copied,
       (${lastKey} FROM batch ORDER BY ${descending} LIMIT 1) AS last`;
  const firstSql = batchSql(true);
  const nextSql = batchSql(false);
  let last: string[] | undefined;
  for (;;) {
    const r = record(
      (
        await withLockRetry(session, () =>
          session.client.query(
            last === undefined ? firstSql : nextSql,
            last === undefined ? [batchSize, ...upTo] : [batchSize, ...upTo, ...last],
          ),
        )
      ).rows[0],
    );
    const read = Number(r.read ?? 0);
    if (read === 0) return progress;
    progress = {
      rowsRead: progress.rowsRead + read,
      rowsCopied: progress.rowsCopied + Number(r.copied ?? 0),
      batches: progress.batches + 1,
    };
    onBatch(progress);
    last = Array.isArray(r.last) ? r.last.map(String) : undefined;
    if (last === undefined) return progress;
  }
}

/**
 * Whether an interrupted migration left its work behind: the mirror trigger on the plain table,
 * or a partitioned table under the shadow's name (a name only pgpulse gives).
 */
export async function hasLeftovers(
  session: DdlSession,
  source: SourceTable,
  names: ShadowNames,
): Promise<boolean> {
  const r = record(
    (
      await session.client.query(
        `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                         WHERE tgrelid = $1::oid AND tgname = ANY ($2::text[])) AS triggers,
                EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = $3 AND c.relname = $4 AND c.relkind = 'p') AS shadow`,
        [source.oid, [MIRROR_TRIGGER, TRUNCATE_TRIGGER], source.schema, names.table],
      )
    ).rows[0],
  );
  return r.triggers === true || r.shadow === true;
}

/** Best effort, after a failure before the swap: the triggers, the function and the shadow go. */
export async function removeShadow(
  session: DdlSession,
  source: SourceTable,
  names: ShadowNames,
): Promise<string | undefined> {
  const original = qualified(source.schema, source.table);
  try {
    await withLockRetry(session, () =>
      inTransaction(session, [
        `DROP TRIGGER IF EXISTS ${quoteIdent(MIRROR_TRIGGER)} ON ${original}`,
        `DROP TRIGGER IF EXISTS ${quoteIdent(TRUNCATE_TRIGGER)} ON ${original}`,
        `DROP FUNCTION IF EXISTS ${qualified(source.schema, names.mirrorFunction)}()`,
        `DROP TABLE IF EXISTS ${qualified(source.schema, names.table)}`,
      ]),
    );
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
