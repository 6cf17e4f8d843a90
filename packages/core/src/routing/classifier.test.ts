import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { isParserLoaded, loadParser } from '../sql/index.js';
import type {
  Classification,
  ClassificationReason,
  SessionEffect,
  StatementKind,
  TransactionControl,
} from './classification.js';
import { BUILTIN_VOLATILE_FUNCTIONS, classify, createClassifier } from './classifier.js';

interface Expected {
  readonly transaction?: TransactionControl;
  readonly session?: SessionEffect;
  readonly functions?: readonly string[];
}

type Case = readonly [
  sql: string,
  kind: StatementKind,
  reason: ClassificationReason,
  expected?: Expected,
];

const CASES: readonly Case[] = [
  // provably read-only
  ['SELECT 1', 'read', 'select'],
  ['select * from t where id = $1', 'read', 'select'],
  ['SELECT * FROM t ORDER BY id LIMIT 10 OFFSET 20', 'read', 'select'],
  ['SELECT 1;', 'read', 'select'],
  ['  \n SELECT 1  -- trailing comment\n', 'read', 'select'],
  ['VALUES (1, 2), (3, 4)', 'read', 'values'],
  ['TABLE t', 'read', 'table'],
  ['TABLE public.t ORDER BY 1 LIMIT 5', 'read', 'table'],
  ['SELECT * FROM t', 'read', 'select'],
  ['SELECT 1 UNION ALL SELECT 2', 'read', 'select'],
  ['SELECT a FROM t INTERSECT SELECT a FROM u EXCEPT SELECT a FROM v', 'read', 'select'],
  ['WITH x AS (SELECT * FROM t) SELECT * FROM x', 'read', 'select'],
  [
    'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r',
    'read',
    'select',
  ],
  ['SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)', 'read', 'select'],
  ['SELECT count(*) OVER (PARTITION BY a) FROM t', 'read', 'select', { functions: ['count'] }],
  ['select now()', 'read', 'select', { functions: ['now'] }],
  ['select random()', 'read', 'select', { functions: ['random'] }],
  ['select pg_sleep(0)', 'read', 'select', { functions: ['pg_sleep'] }],
  [
    'select pg_is_in_recovery(), pg_last_wal_replay_lsn()',
    'read',
    'select',
    { functions: ['pg_is_in_recovery', 'pg_last_wal_replay_lsn'] },
  ],
  ['select my_schema.f(x), g() from t', 'read', 'select', { functions: ['my_schema.f', 'g'] }],
  ['select "MySchema"."F"(1)', 'read', 'select', { functions: ['MySchema.F'] }],
  ['select lower(name), lower(email) from users', 'read', 'select', { functions: ['lower'] }],
  [
    'SELECT * FROM generate_series(1, 3) AS g',
    'read',
    'select',
    { functions: ['generate_series'] },
  ],
  ['SELECT $1::int', 'read', 'select'],
  // ORM-shaped reads
  ['select "id", "name" from "users" where "users"."id" = $1', 'read', 'select'],
  [
    'select "users"."id", "posts"."title" from "users" left join "posts" on "posts"."author_id" = "users"."id" where "users"."id" = $1 limit $2',
    'read',
    'select',
  ],
  [
    'SELECT "public"."User"."id" FROM "public"."User" WHERE ("public"."User"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3',
    'read',
    'select',
  ],
  [
    'SELECT "public"."User"."id", COALESCE("aggr_selection_0_Post"."_aggr_count_posts", 0) AS "_aggr_count_posts" FROM "public"."User" LEFT JOIN (SELECT "public"."Post"."authorId", COUNT(*) AS "_aggr_count_posts" FROM "public"."Post" WHERE 1=1 GROUP BY "public"."Post"."authorId") AS "aggr_selection_0_Post" ON ("public"."User"."id" = "aggr_selection_0_Post"."authorId") WHERE 1=1 OFFSET $1',
    'read',
    'select',
    { functions: ['count'] },
  ],
  [
    'SELECT "User"."id" AS "User_id" FROM "user" "User" WHERE "User"."id" IN ($1)',
    'read',
    'select',
  ],
  [
    'SELECT DISTINCT "distinctAlias"."User_id" AS "ids_User_id" FROM (SELECT "User"."id" AS "User_id" FROM "user" "User") "distinctAlias" ORDER BY "User_id" ASC LIMIT 10',
    'read',
    'select',
  ],
  // SHOW and EXPLAIN
  ['SHOW search_path', 'read', 'show'],
  ['SHOW ALL', 'read', 'show'],
  ['EXPLAIN SELECT * FROM t', 'read', 'explain'],
  ['EXPLAIN (FORMAT JSON, VERBOSE) SELECT * FROM t', 'read', 'explain'],
  ['EXPLAIN UPDATE t SET a = 1', 'read', 'explain'],
  ['EXPLAIN (ANALYZE false) DELETE FROM t', 'read', 'explain'],
  ['EXPLAIN (ANALYZE off) INSERT INTO t VALUES (1)', 'read', 'explain'],
  ['EXPLAIN ANALYZE SELECT * FROM t', 'read', 'explain'],
  [
    'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT lower(a) FROM t',
    'read',
    'explain',
    { functions: ['lower'] },
  ],
  ['EXPLAIN ANALYZE DELETE FROM t', 'write', 'explain-analyze'],
  ['EXPLAIN (ANALYZE true) UPDATE t SET a = 1', 'write', 'explain-analyze'],
  ['EXPLAIN (ANALYZE 1) INSERT INTO t VALUES (1)', 'write', 'explain-analyze'],
  ["EXPLAIN ANALYZE SELECT nextval('s')", 'write', 'explain-analyze', { session: 'sequence' }],
  ['EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE', 'write', 'explain-analyze'],
  [
    'EXPLAIN ANALYZE SELECT pg_advisory_lock(1)',
    'write',
    'explain-analyze',
    { session: 'advisory-lock' },
  ],
  ['EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1', 'write', 'explain-analyze'],
  ['EXPLAIN EXECUTE p(1)', 'write', 'utility'],
  // hints
  ['SELECT 1 /* pgpulse:primary */', 'write', 'hint-primary'],
  ['/* pgpulse:primary */ select "id" from "users"', 'write', 'hint-primary'],
  ['select 1 -- pgpulse:primary', 'write', 'hint-primary'],
  ['/* pgpulse:replica */ SELECT * FROM t', 'read', 'hint-replica'],
  [
    '/* pgpulse:replica */ select lower(a) from t',
    'read',
    'hint-replica',
    { functions: ['lower'] },
  ],
  ['/* pgpulse:replica */ /* pgpulse:primary */ SELECT 1', 'write', 'hint-primary'],
  ['/* pgpulse:replica */ DELETE FROM t', 'write', 'write'],
  ['/* pgpulse:replica */ SELECT * FROM t FOR UPDATE', 'write', 'locking-clause'],
  [
    "/* pgpulse:replica */ SELECT nextval('s')",
    'write',
    'volatile-function',
    { session: 'sequence' },
  ],
  ['/* pgpulse:replica */ SELECT 1; DELETE FROM t', 'write', 'multi-statement'],
  ['/* pgpulse:primary */ BEGIN', 'write', 'transaction-control', { transaction: 'begin' }],
  ["SELECT '/* pgpulse:primary */' AS not_a_hint", 'read', 'select'],
  ['/* pgpulse:replica */ SELECT 1 /* pgpulse:unknown */', 'read', 'hint-replica'],
  // locking clauses
  ['SELECT * FROM t FOR UPDATE', 'write', 'locking-clause'],
  ['SELECT * FROM t FOR NO KEY UPDATE OF t NOWAIT', 'write', 'locking-clause'],
  ['SELECT * FROM t FOR SHARE SKIP LOCKED', 'write', 'locking-clause'],
  ['SELECT * FROM t FOR KEY SHARE', 'write', 'locking-clause'],
  ['SELECT a FROM t UNION (SELECT a FROM u FOR UPDATE)', 'write', 'locking-clause'],
  ['SELECT * FROM (SELECT * FROM t FOR KEY SHARE) s', 'write', 'locking-clause'],
  ['WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x', 'write', 'locking-clause'],
  [
    'SELECT "User"."id" FROM "user" "User" WHERE "User"."id" = $1 FOR UPDATE',
    'write',
    'locking-clause',
  ],
  // writable CTEs
  ['WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x', 'write', 'writable-cte'],
  ['WITH x AS (UPDATE t SET a = 1 RETURNING a) SELECT count(*) FROM x', 'write', 'writable-cte'],
  ['WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM x', 'write', 'writable-cte'],
  [
    'SELECT * FROM (WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d) s',
    'write',
    'writable-cte',
  ],
  [
    'SELECT * FROM u WHERE id IN (WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d)',
    'write',
    'writable-cte',
  ],
  [
    'WITH a AS (WITH b AS (UPDATE t SET x = 1 RETURNING x) SELECT x FROM b) SELECT * FROM a',
    'write',
    'writable-cte',
  ],
  [
    'WITH m AS (MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING t.id) SELECT * FROM m',
    'write',
    'writable-cte',
  ],
  // SELECT INTO
  ['SELECT * INTO new_t FROM t', 'write', 'select-into'],
  ['SELECT 1 AS a INTO TEMP tmp_t', 'write', 'select-into', { session: 'temp-table' }],
  // volatile functions
  ["SELECT nextval('s')", 'write', 'volatile-function', { session: 'sequence' }],
  ["select pg_catalog.setval('s', 42)", 'write', 'volatile-function', { session: 'sequence' }],
  ["SELECT currval('s'), lastval()", 'write', 'volatile-function'],
  ['select pg_advisory_lock(1)', 'write', 'volatile-function', { session: 'advisory-lock' }],
  [
    'select pg_try_advisory_lock_shared(1)',
    'write',
    'volatile-function',
    { session: 'advisory-lock' },
  ],
  [
    'select pg_catalog.pg_advisory_lock(1, 2)',
    'write',
    'volatile-function',
    { session: 'advisory-lock' },
  ],
  ['select pg_advisory_xact_lock(1)', 'write', 'volatile-function'],
  ['select pg_advisory_unlock(1)', 'write', 'volatile-function'],
  ['select txid_current()', 'write', 'volatile-function'],
  ['select pg_current_wal_insert_lsn()', 'write', 'volatile-function'],
  ["select pg_notify('chan', 'payload')", 'write', 'volatile-function'],
  ["select set_config('app.user', $1, true)", 'write', 'volatile-function'],
  [
    "select set_config('search_path', 'x', false)",
    'write',
    'volatile-function',
    { session: 'set' },
  ],
  ["select set_config('search_path', 'x', $3)", 'write', 'volatile-function', { session: 'set' }],
  [
    "SELECT * FROM t WHERE id = (SELECT nextval('s'))",
    'write',
    'volatile-function',
    { session: 'sequence' },
  ],
  ["SELECT 1 UNION SELECT nextval('s')", 'write', 'volatile-function', { session: 'sequence' }],
  [
    "SELECT CASE WHEN a > 0 THEN nextval('s') END FROM t",
    'write',
    'volatile-function',
    { session: 'sequence' },
  ],
  [
    "SELECT * FROM t, LATERAL (SELECT nextval('s')) AS n",
    'write',
    'volatile-function',
    { session: 'sequence' },
  ],
  ["VALUES (nextval('s'))", 'write', 'volatile-function', { session: 'sequence' }],
  [
    "SELECT count(*) FILTER (WHERE nextval('s') > 0) FROM t",
    'write',
    'volatile-function',
    { session: 'sequence' },
  ],
  ['SELECT lo_create(0)', 'write', 'volatile-function'],
  // multi-statement
  ['SELECT * FROM t; DELETE FROM t', 'write', 'multi-statement'],
  ['SELECT 1; SELECT 2', 'write', 'multi-statement'],
  ['BEGIN; SELECT 1', 'write', 'multi-statement', { transaction: 'begin' }],
  ['BEGIN READ ONLY; SELECT 1', 'write', 'multi-statement', { transaction: 'begin' }],
  ['BEGIN; SAVEPOINT a', 'write', 'multi-statement', { transaction: 'begin' }],
  [
    'BEGIN; INSERT INTO t VALUES (1); COMMIT',
    'write',
    'multi-statement',
    { transaction: 'commit' },
  ],
  ['SET search_path = x; SELECT 1', 'write', 'multi-statement', { session: 'set' }],
  // empty and unparseable
  ['', 'write', 'empty'],
  ['   \n\t ', 'write', 'empty'],
  ['-- just a comment', 'write', 'empty'],
  ['/* pgpulse:replica */', 'write', 'empty'],
  [';', 'write', 'empty'],
  ['gibberish', 'write', 'unparseable'],
  ['SELEC * FROM t', 'write', 'unparseable'],
  ['SELECT * FROM', 'write', 'unparseable'],
  ['SELECT 1 /* unterminated', 'write', 'unparseable'],
  ['SELECT 1\0; DELETE FROM t', 'write', 'unparseable'],
  // DML
  ['INSERT INTO "user"("name") VALUES ($1) RETURNING "id"', 'write', 'write'],
  [
    'insert into "users" ("id", "name") values (default, $1) returning "id", "name"',
    'write',
    'write',
  ],
  [
    'UPDATE "public"."User" SET "name" = $1 WHERE ("public"."User"."id" = $2 AND 1=1) RETURNING "public"."User"."id"',
    'write',
    'write',
  ],
  ['DELETE FROM t WHERE id = $1', 'write', 'write'],
  [
    'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)',
    'write',
    'write',
  ],
  ['INSERT INTO t SELECT * FROM u', 'write', 'write'],
  ['INSERT INTO locks SELECT pg_advisory_lock(1)', 'write', 'write', { session: 'advisory-lock' }],
  ['COPY t FROM STDIN', 'write', 'write'],
  ['COPY t TO STDOUT', 'write', 'utility'],
  ['COPY (SELECT * FROM t) TO STDOUT WITH (FORMAT csv)', 'write', 'utility'],
  ['CALL do_things(1)', 'write', 'call'],
  ['DO $$ BEGIN PERFORM 1; END $$', 'write', 'utility'],
  ["NOTIFY chan, 'x'", 'write', 'utility'],
  // DDL
  ['CREATE TABLE t (id int primary key)', 'write', 'ddl'],
  ['ALTER TABLE t ADD COLUMN b text', 'write', 'ddl'],
  ['DROP TABLE IF EXISTS t', 'write', 'ddl'],
  ['CREATE INDEX CONCURRENTLY t_a_idx ON t (a)', 'write', 'ddl'],
  ['CREATE VIEW v AS SELECT * FROM t', 'write', 'ddl'],
  ['CREATE TABLE x AS SELECT * FROM t', 'write', 'ddl'],
  ['CREATE MATERIALIZED VIEW mv AS SELECT 1', 'write', 'ddl'],
  ['REFRESH MATERIALIZED VIEW CONCURRENTLY mv', 'write', 'ddl'],
  ['TRUNCATE t', 'write', 'ddl'],
  ['VACUUM ANALYZE t', 'write', 'ddl'],
  ['ANALYZE t', 'write', 'ddl'],
  ['REINDEX TABLE t', 'write', 'ddl'],
  ['CLUSTER t USING t_pkey', 'write', 'ddl'],
  ['GRANT SELECT ON t TO reader', 'write', 'ddl'],
  ["COMMENT ON TABLE t IS 'x'", 'write', 'ddl'],
  ['CREATE EXTENSION IF NOT EXISTS hypopg', 'write', 'ddl'],
  ['CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', 'write', 'ddl'],
  ['ALTER SYSTEM SET work_mem = 1000', 'write', 'ddl'],
  ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', 'write', 'utility'],
  ['CHECKPOINT', 'write', 'utility'],
  // transaction control
  ['BEGIN', 'write', 'transaction-control', { transaction: 'begin' }],
  ['START TRANSACTION', 'write', 'transaction-control', { transaction: 'begin' }],
  ['BEGIN ISOLATION LEVEL SERIALIZABLE', 'write', 'transaction-control', { transaction: 'begin' }],
  ['BEGIN READ ONLY', 'write', 'transaction-control', { transaction: 'begin-read-only' }],
  [
    'START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY',
    'write',
    'transaction-control',
    { transaction: 'begin-read-only' },
  ],
  ['START TRANSACTION READ WRITE', 'write', 'transaction-control', { transaction: 'begin' }],
  ['COMMIT', 'write', 'transaction-control', { transaction: 'commit' }],
  ['END', 'write', 'transaction-control', { transaction: 'commit' }],
  ['ROLLBACK', 'write', 'transaction-control', { transaction: 'rollback' }],
  ['ABORT', 'write', 'transaction-control', { transaction: 'rollback' }],
  ['SAVEPOINT typeorm_1', 'write', 'transaction-control', { transaction: 'savepoint' }],
  ['RELEASE SAVEPOINT typeorm_1', 'write', 'transaction-control', { transaction: 'release' }],
  [
    'ROLLBACK TO SAVEPOINT typeorm_1',
    'write',
    'transaction-control',
    { transaction: 'rollback-to' },
  ],
  [
    "PREPARE TRANSACTION 'gid1'",
    'write',
    'transaction-control',
    { transaction: 'prepare-transaction' },
  ],
  ["COMMIT PREPARED 'gid1'", 'write', 'utility'],
  ['COMMIT AND CHAIN', 'write', 'transaction-control'],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'write', 'transaction-control'],
  // session state
  ['SET search_path TO app, public', 'write', 'session-state', { session: 'set' }],
  ["SET SESSION statement_timeout = '5s'", 'write', 'session-state', { session: 'set' }],
  ["SET TIME ZONE 'UTC'", 'write', 'session-state', { session: 'set' }],
  ['SET ROLE app_reader', 'write', 'session-state', { session: 'set' }],
  ["SET LOCAL statement_timeout = '5s'", 'write', 'session-state'],
  ['SET CONSTRAINTS ALL DEFERRED', 'write', 'session-state'],
  ['RESET search_path', 'write', 'session-state', { session: 'reset' }],
  ['RESET ALL', 'write', 'session-state', { session: 'reset' }],
  ['LISTEN chan', 'write', 'session-state', { session: 'listen' }],
  ['UNLISTEN *', 'write', 'session-state', { session: 'unlisten' }],
  ['DISCARD ALL', 'write', 'session-state', { session: 'discard' }],
  ['CREATE TEMP TABLE tmp (a int)', 'write', 'ddl', { session: 'temp-table' }],
  ['CREATE TEMPORARY TABLE tmp AS SELECT 1', 'write', 'ddl', { session: 'temp-table' }],
  ['CREATE TABLE pg_temp.tmp (a int)', 'write', 'ddl', { session: 'temp-table' }],
  ['CREATE TEMP VIEW tv AS SELECT 1', 'write', 'ddl', { session: 'temp-table' }],
  [
    'PREPARE q (int) AS SELECT * FROM t WHERE id = $1',
    'write',
    'session-state',
    { session: 'prepare' },
  ],
  ['EXECUTE q(1)', 'write', 'utility'],
  ['DEALLOCATE q', 'write', 'session-state', { session: 'deallocate' }],
  [
    'DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t',
    'write',
    'session-state',
    { session: 'cursor-with-hold' },
  ],
  ['DECLARE c CURSOR FOR SELECT * FROM t', 'write', 'utility'],
  ['FETCH 10 FROM c', 'write', 'utility'],
  ['CLOSE c', 'write', 'utility'],
];

beforeAll(async () => {
  await loadParser();
});

describe('classify: statement table', () => {
  it('has a broad table', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(80);
  });

  for (const [sql, kind, reason, expected] of CASES) {
    it(`${JSON.stringify(sql)} -> ${kind}/${reason}`, () => {
      const c = classify(sql);
      expect({ kind: c.kind, reason: c.reason }).toEqual({ kind, reason });
      expect(c.transaction).toBe(expected?.transaction);
      expect(c.session).toBe(expected?.session);
      if (expected?.functions !== undefined) expect(c.functions).toEqual(expected.functions);
      if (c.kind === 'write') expect(c.functions).toEqual([]);
    });
  }
});

describe('classify: results', () => {
  it('returns frozen, shared objects for repeated text', () => {
    const a = classify('select lower(a), lower(b), upper(c) from t');
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.functions)).toBe(true);
    expect(a.functions).toEqual(['lower', 'upper']);
    expect(classify('select lower(a), lower(b), upper(c) from t')).toBe(a);
  });

  it('omits transaction and session keys when there is nothing to report', () => {
    const c = classify('SELECT 1');
    expect('transaction' in c).toBe(false);
    expect('session' in c).toBe(false);
  });

  it('includes the required built-in volatile functions and keeps pg_sleep readable', () => {
    for (const name of [
      'nextval',
      'setval',
      'currval',
      'lastval',
      'pg_advisory_lock',
      'pg_try_advisory_xact_lock_shared',
      'pg_advisory_unlock_all',
      'pg_current_xact_id_if_assigned',
      'pg_switch_wal',
      'pg_notify',
      'set_config',
      'lo_from_bytea',
      'lowrite',
      'pg_promote',
      'pg_stat_statements_reset',
      'dblink_exec',
      'pg_logical_emit_message',
    ]) {
      expect(BUILTIN_VOLATILE_FUNCTIONS.has(name), name).toBe(true);
    }
    for (const name of ['pg_sleep', 'now', 'random']) {
      expect(BUILTIN_VOLATILE_FUNCTIONS.has(name), name).toBe(false);
    }
  });

  it('matches every built-in both bare and pg_catalog-qualified', () => {
    for (const name of BUILTIN_VOLATILE_FUNCTIONS) {
      expect(classify(`SELECT ${name}()`).kind, name).toBe('write');
      expect(classify(`SELECT pg_catalog.${name}()`).kind, name).toBe('write');
    }
  });
});

describe('createClassifier options', () => {
  it('treats user volatile functions as writes, bare or schema-qualified', () => {
    const c = createClassifier({ volatileFunctions: ['audit_log', 'billing.charge'] });
    expect(c.classify('select audit_log($1)').reason).toBe('volatile-function');
    expect(c.classify('select app.audit_log($1)').reason).toBe('volatile-function');
    expect(c.classify('select billing.charge($1)').reason).toBe('volatile-function');
    // search_path may resolve a bare call to billing.charge
    expect(c.classify('select charge($1)').reason).toBe('volatile-function');
    expect(c.classify('select other.charge($1)').kind).toBe('read');
  });

  it('lets the allow list win over the built-in list', () => {
    const c = createClassifier({ allowFunctions: ['nextval'] });
    const bare = c.classify("select nextval('s')");
    expect(bare).toMatchObject({ kind: 'read', reason: 'select', functions: ['nextval'] });
    expect(c.classify("select pg_catalog.nextval('s')").kind).toBe('read');
    expect(c.classify("select setval('s', 1)").kind).toBe('write');
    // the default classifier is unaffected
    expect(classify("select nextval('s')").kind).toBe('write');
  });

  it('never lets the allow list excuse a locking clause or a writable CTE', () => {
    const c = createClassifier({ allowFunctions: ['nextval'] });
    expect(c.classify("select nextval('s') from t for update").kind).toBe('write');
    expect(c.classify('with d as (delete from t returning *) select * from d').kind).toBe('write');
  });

  it('rejects a bad cacheSize with an error naming the field', () => {
    expect(() => createClassifier({ cacheSize: -1 })).toThrow(/cacheSize/);
    expect(() => createClassifier({ cacheSize: 1.5 })).toThrow(/cacheSize/);
  });

  it('rejects empty function names', () => {
    expect(() => createClassifier({ volatileFunctions: [''] })).toThrow(/volatileFunctions/);
    expect(() => createClassifier({ allowFunctions: [' '] })).toThrow(/allowFunctions/);
  });
});

describe('cache', () => {
  it('stays within cacheSize and evicts the oldest entry', () => {
    const c = createClassifier({ cacheSize: 10 });
    for (let i = 0; i < 100; i++) {
      c.classify(`SELECT ${i}`);
      expect(c.cacheSize).toBeLessThanOrEqual(10);
    }
    expect(c.cacheSize).toBe(10);
  });

  it('returns the cached object on a hit', () => {
    const c = createClassifier({ cacheSize: 2 });
    const first = c.classify('select lower(a) from t');
    expect(c.classify('select lower(a) from t')).toBe(first);
  });

  it('can be disabled', () => {
    const c = createClassifier({ cacheSize: 0 });
    c.classify('SELECT 1');
    expect(c.cacheSize).toBe(0);
  });

  it('caches a very long text by its shape only', () => {
    const c = createClassifier();
    const long = `SELECT * FROM t WHERE id IN (${Array.from({ length: 10_000 }, (_, i) => i).join(',')})`;
    expect(c.classify(long).kind).toBe('read');
    // One entry: the shape `... IN (0)`, shared by every length of the list; not the text.
    expect(c.cacheSize).toBe(1);
  });

  it('is bounded for any sequence of texts (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.string({ maxLength: 30 }), { maxLength: 60 }),
        (size, texts) => {
          const c = createClassifier({ cacheSize: size });
          for (const text of texts) {
            c.classify(text);
            if (c.cacheSize > size) return false;
          }
          return true;
        },
      ),
    );
  });
});

describe('properties', () => {
  const isValid = (c: Classification): boolean =>
    (c.kind === 'read' || c.kind === 'write') && typeof c.reason === 'string';

  it('never throws and always returns a valid kind for arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => isValid(classify(text))),
      { numRuns: 500 },
    );
  });

  it('never throws for SQL-looking fragments', () => {
    const word = fc.constantFrom(
      'SELECT',
      'select',
      'FROM',
      't',
      '*',
      '(',
      ')',
      ';',
      ',',
      "'",
      '"',
      '$1',
      '--',
      '/*',
      '*/',
      'FOR',
      'UPDATE',
      'WITH',
      'AS',
      'DELETE',
      'INSERT',
      'INTO',
      'VALUES',
      'nextval',
      'now()',
      'EXPLAIN',
      'ANALYZE',
      'BEGIN',
      'SET',
      'pgpulse:replica',
      'pgpulse:primary',
      '\n',
      ' ',
    );
    fc.assert(
      fc.property(fc.array(word, { maxLength: 25 }), (words) => isValid(classify(words.join(' ')))),
      { numRuns: 1000 },
    );
  });

  it('keeps a write on the primary whatever follows it, replica hints included', () => {
    const writePrefix = fc.constantFrom(
      'DELETE FROM t',
      'UPDATE t SET a = 1',
      'INSERT INTO t VALUES (1)',
      'SELECT * FROM t FOR UPDATE',
      "SELECT nextval('s')",
      'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
      'TRUNCATE t',
    );
    fc.assert(
      fc.property(
        writePrefix,
        fc.string({ maxLength: 40 }),
        fc.boolean(),
        (prefix, noise, before) => {
          const hint = '/* pgpulse:replica */';
          // The `;` keeps the prefix a statement of its own: glued text can re-parse it (found
          // by this property: `SELECT nextval('s') $0` is a cast of $0 to a type named nextval,
          // which reads nothing and is rightly a read).
          const sql = before
            ? `${hint} ${prefix}; ${hint} ${noise}`
            : `${prefix} ${hint}; ${noise}`;
          return classify(sql).kind === 'write';
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never sends a multi-statement text to a replica', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('SELECT 1', 'SELECT * FROM t', 'VALUES (1)', 'SHOW x', 'TABLE t'),
        fc.constantFrom('SELECT 2', 'DELETE FROM t', 'SET x = 1', 'BEGIN'),
        (a, b) => classify(`${a}; ${b}`).kind === 'write',
      ),
    );
  });
});

describe('parser loading', () => {
  it('is idempotent and reports itself loaded', async () => {
    await loadParser();
    await loadParser();
    expect(isParserLoaded()).toBe(true);
  });
});
