import { quoteIdent } from '../../sql/index.js';
import { type DdlSession, inTransaction, withLockRetry } from '../ddl.js';
import { qualified } from '../sql.js';
import type { ShadowNames } from './copy.js';
import { type Rename, renameStatements } from './names.js';
import type { SourceTable } from './source.js';
import { MIRROR_TRIGGER, TRUNCATE_TRIGGER } from './triggers.js';

/**
 * The swap: one short transaction under ACCESS EXCLUSIVE locks on both tables, catalog changes
 * only, so writers wait for it and nothing else. The lock is waited for at most `lockTimeoutMs`
 * (writers queue behind the request meanwhile, so it is short), then retried with backoff:
 * - the mirror triggers and their function are dropped (every change is already in the shadow);
 * - each identity column's sequence in the shadow is set to the plain table's last value;
 * - the sequences of serial columns (shared by both tables' defaults) become owned by the
 *   shadow's columns, so dropping the old table later keeps them;
 * - the plain table is renamed `<table>_old`, the shadow takes the table's name, and its
 *   indexes and identity sequences take their counterparts' names (names.ts).
 * A statement waiting for the lock looks the name up again once it is granted (PostgreSQL
 * re-resolves a relation name when invalidations arrived while it waited), so the writers'
 * next INSERT goes to the partitioned table without an error.
 */
export async function swap(
  session: DdlSession,
  source: SourceTable,
  names: ShadowNames,
  oldName: string,
  renames: readonly Rename[],
  lockTimeoutMs: number,
): Promise<{ readonly ms: number; readonly attempts: number }> {
  const original = qualified(source.schema, source.table);
  const shadow = qualified(source.schema, names.table);
  const { client } = session;
  let attempts = 0;
  let ms = 0;
  await withLockRetry(session, async () => {
    attempts++;
    const started = performance.now();
    await inTransaction(
      session,
      async () => {
        await client.query(`LOCK TABLE ${original}, ${shadow} IN ACCESS EXCLUSIVE MODE`);
        await client.query(`DROP TRIGGER ${quoteIdent(MIRROR_TRIGGER)} ON ${original}`);
        await client.query(`DROP TRIGGER ${quoteIdent(TRUNCATE_TRIGGER)} ON ${original}`);
        await client.query(`DROP FUNCTION ${qualified(source.schema, names.mirrorFunction)}()`);
        for (const column of source.identityColumns) {
          // pg_get_serial_sequence takes the table as text to parse: give it the quoted name.
          await client.query(
            `SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence($2, $3), v)
               FROM (SELECT pg_catalog.pg_sequence_last_value(
                              pg_catalog.pg_get_serial_sequence($1, $3)::pg_catalog.regclass) AS v) s
              WHERE v IS NOT NULL`,
            [original, shadow, column],
          );
        }
        for (const s of source.ownedSequences) {
          await client.query(
            `ALTER SEQUENCE ${s.sequence} OWNED BY ${shadow}.${quoteIdent(s.column)}`,
          );
        }
        await client.query(`ALTER TABLE ${original} RENAME TO ${quoteIdent(oldName)}`);
        await client.query(`ALTER TABLE ${shadow} RENAME TO ${quoteIdent(source.table)}`);
        for (const statement of renameStatements(source.schema, renames)) {
          await client.query(statement);
        }
      },
      lockTimeoutMs,
    );
    ms = performance.now() - started;
  });
  return { ms, attempts };
}
