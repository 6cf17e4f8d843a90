import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadParser } from '../sql/index.js';
import type { Classification, ClassifierOptions } from './classification.js';
import { classifyByParse, createClassifier } from './classifier.js';

beforeAll(async () => {
  await loadParser();
});

const facts = (c: Classification) => ({
  kind: c.kind,
  reason: c.reason,
  transaction: c.transaction,
  session: c.session,
  functions: [...c.functions],
});

const placeholders = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ');
const bulkInsert = (rows: number) =>
  `insert into "t" ("a", "b", "c", "d", "e") values ${Array.from(
    { length: rows },
    (_, r) => `(${placeholders(r * 5 + 1, 5)})`,
  ).join(', ')} returning "id"`;
const inList = (n: number) =>
  `select "id", "name" from "users" where "users"."id" in (${placeholders(1, n)}) limit $${n + 1}`;

describe('big statements', () => {
  it('shares one shape, one parse and one cache entry for every size of an IN list', () => {
    const c = createClassifier();
    const first = c.classify(inList(2));
    for (const n of [3, 10, 1000, 40_000]) expect(c.classify(inList(n))).toBe(first);
    expect(first).toMatchObject({ kind: 'read', reason: 'select' });
    expect(c.parseCount).toBe(1);
    // The two short texts are remembered too; the shape is one entry.
    expect(c.cacheSize).toBeLessThanOrEqual(4);
  });

  it('shares one shape for VALUES lists, ANY(ARRAY[...]) and row IN lists', () => {
    const c = createClassifier();
    const values = (n: number) =>
      `SELECT * FROM (VALUES ${Array.from({ length: n }, (_, i) => `(${i}, 'x${i}')`).join(', ')}) v(a, b)`;
    const any = (n: number) =>
      `SELECT * FROM t WHERE id = ANY(ARRAY[${placeholders(1, n)}]::int[])`;
    const rows = (n: number) =>
      `SELECT * FROM t WHERE (a, b) IN (${Array.from({ length: n }, (_, i) => `(${i}, ${i})`).join(', ')})`;
    for (const make of [values, any, rows]) {
      const before = c.parseCount;
      const small = c.classify(make(2));
      expect(small.kind).toBe('read');
      expect(c.classify(make(5000))).toBe(small);
      expect(c.parseCount).toBe(before + 1);
    }
  });

  it('routes bulk writes to the primary without a parse', () => {
    const c = createClassifier();
    for (const sql of [
      bulkInsert(30_000),
      `INSERT INTO notes (body) VALUES ${Array.from({ length: 5000 }, (_, i) => `('a; b -- ${i}')`).join(', ')}`,
      `DELETE FROM "t" WHERE "id" IN (${placeholders(1, 40_000)})`,
      `UPDATE t SET a = CASE id ${Array.from({ length: 5000 }, (_, i) => `WHEN ${i} THEN ${i}`).join(' ')} END`,
    ]) {
      expect(facts(c.classify(sql))).toEqual(
        facts(classifyByParse(sql.slice(0, 0) || 'DELETE FROM t')),
      );
    }
    expect(c.parseCount).toBe(0);
  });

  it('still parses a write whose text could change the connection', () => {
    const c = createClassifier();
    expect(c.classify('INSERT INTO locks SELECT pg_advisory_lock(1)').session).toBe(
      'advisory-lock',
    );
    expect(c.classify(`${bulkInsert(10)}; BEGIN`).transaction).toBe('begin');
    expect(c.classify("INSERT INTO t VALUES (';'); SET search_path = x").session).toBe('set');
    expect(c.classify('INSERT INTO t SELECT U&"pg_\\0061dvisory_lock"(1)').session).toBe(
      'advisory-lock',
    );
  });

  it('keeps lists that are not plain constants whole', () => {
    const c = createClassifier({ volatileFunctions: ['audit'] });
    const writes = [
      "SELECT * FROM t WHERE id IN (1, nextval('s'))",
      "SELECT * FROM t WHERE id IN (1, 2, nextval('s'), 4)",
      'SELECT * FROM t WHERE id IN (1, (SELECT id FROM u FOR UPDATE))',
      'SELECT * FROM t WHERE id IN (1, 2, (WITH d AS (DELETE FROM u RETURNING id) SELECT id FROM d))',
      "SELECT * FROM (VALUES (1), (2), (nextval('s'))) v",
      'SELECT ARRAY[1, 2, txid_current()]',
      'SELECT * FROM t WHERE id IN (1, 2, audit(3))',
      'SELECT * FROM t WHERE id IN (1, 2) /* pgpulse:primary */',
      "SELECT * FROM t WHERE id IN ('/* pgpulse:replica */', '2') /* pgpulse:primary */",
      'SELECT * FROM t WHERE id IN (1, $$x$$, 2); DELETE FROM t WHERE b IN (1, 2)',
      "SELECT * FROM t WHERE id IN (1, 2, 3) AND set_config('a', 'b', false) IS NOT NULL",
      "SELECT * FROM t WHERE id IN (1, '2'; DELETE FROM t; --')",
    ];
    const reads = [
      'SELECT * FROM t WHERE id IN (1, 2 /* ; DELETE FROM t */, 3)',
      "SELECT * FROM t WHERE id IN ('a', 'b -- c', $$d$$, E'\\'')",
      'SELECT * FROM t WHERE id IN (1, 2) /* pgpulse:replica */',
    ];
    for (const sql of [...writes, ...reads]) {
      const got = c.classify(sql);
      expect(got.kind, sql).toBe(writes.includes(sql) ? 'write' : 'read');
      expect(facts(got), sql).toEqual(
        facts(classifyByParse(sql, { volatileFunctions: ['audit'] })),
      );
    }
  });

  it('routes a read that is still too long after collapsing to the primary, unparsed', () => {
    const c = createClassifier({ maxParseLength: 200 });
    const wide = `SELECT ${Array.from({ length: 60 }, (_, i) => `c${i}`).join(', ')} FROM t`;
    expect(c.classify(wide)).toMatchObject({ kind: 'write', reason: 'too-large' });
    expect(c.parseCount).toBe(0);
    // Unless something in it could change the session: then only the parser can tell.
    const locking = `${wide} WHERE set_config('a', 'b', false) IS NOT NULL`;
    expect(c.classify(locking)).toMatchObject({ kind: 'write', session: 'set' });
    // A list that collapses brings it under the bound and it is read as usual.
    expect(c.classify(`SELECT * FROM t WHERE id IN (${placeholders(1, 500)})`).kind).toBe('read');
  });

  it('rejects a bad maxParseLength with an error naming the field', () => {
    expect(() => createClassifier({ maxParseLength: 0 })).toThrow(/maxParseLength/);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: the fast paths answer exactly what a full parse of the original text answers.

const element = fc.constantFrom(
  '$1',
  '$7',
  '42',
  // Bare parameters and integers are skipped by a regular expression; these sit at its edges.
  '$123456',
  '$1234567',
  '$1a',
  '7x',
  '12.',
  '8 ::int',
  '$4\n::text',
  '\t$5\r\n',
  '-3',
  '+$2',
  '1.5',
  '2e10',
  '3.0e-2',
  "'a'",
  "'it''s'",
  "'; DELETE FROM t; --'",
  "'/* pgpulse:primary */'",
  'NULL',
  'true',
  'FALSE',
  "nextval('s')",
  '(SELECT 1)',
  '(SELECT id FROM t FOR UPDATE)',
  '$$x$$',
  "E'\\''",
  "'a'::text",
  '$2::int',
  '$3 :: INT',
  'DEFAULT',
  'now()',
  'pg_advisory_lock(1)',
  "set_config('a', 'b', false)",
  'audit(1)',
  'x',
  '/* c */ 1',
  '1 -- c\n',
  "'a'\n'b'",
  'ARRAY[1, 2]',
  "U&'x'",
  '0x1F',
  '1_000',
  "B'01'",
  '$99999999',
  'a.b',
  '1.',
  '1e',
  "'unterminated",
);

const list = fc.array(element, { minLength: 1, maxLength: 12 }).map((xs) => xs.join(', '));
const rows = fc
  .tuple(fc.integer({ min: 1, max: 3 }), fc.array(element, { minLength: 1, maxLength: 24 }))
  .map(([width, xs]) => {
    const out: string[] = [];
    for (let i = 0; i < xs.length; i += width) out.push(`(${xs.slice(i, i + width).join(', ')})`);
    return out.join(', ');
  });

const readTemplate = fc.oneof(
  list.map((l) => `SELECT * FROM t WHERE a IN (${l})`),
  list.map((l) => `SELECT * FROM t WHERE a NOT IN (${l}) LIMIT $9`),
  rows.map((r) => `SELECT * FROM t WHERE (a, b) IN (${r})`),
  rows.map((r) => `SELECT * FROM (VALUES ${r}) v`),
  rows.map((r) => `WITH v AS (VALUES ${r}) SELECT * FROM v`),
  list.map((l) => `SELECT ARRAY[${l}]`),
  list.map((l) => `SELECT * FROM t WHERE a = ANY(ARRAY[${l}]) FOR UPDATE`),
  list.map((l) => `WITH d AS (DELETE FROM t WHERE id IN (${l}) RETURNING *) SELECT * FROM d`),
  list.map((l) => `/* pgpulse:replica */ SELECT * FROM t WHERE a IN (${l})`),
  list.map((l) => `SELECT * FROM t WHERE a IN (${l}) /* pgpulse:primary */`),
  list.map((l) => `SELECT * FROM t WHERE a IN (${l}); DELETE FROM t`),
  list.map((l) => `EXPLAIN ANALYZE SELECT * FROM t WHERE a IN (${l})`),
  list.map((l) => `SELECT * INTO TEMP x FROM t WHERE a IN (${l})`),
  list.map((l) => `SELECT count(*) FROM t WHERE a IN (${l}) AND b IN (${l})`),
);

const OPTIONS: ClassifierOptions = { volatileFunctions: ['audit'] };

describe('big statements: properties', () => {
  it('classifies every statement with lists exactly as a full parse of its text does', () => {
    const c = createClassifier(OPTIONS);
    fc.assert(
      fc.property(readTemplate, (sql) => {
        const expected = facts(classifyByParse(sql, OPTIONS));
        expect(facts(c.classify(sql)), sql).toEqual(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('never turns a write or unknown into a read, with a cache shared across texts', () => {
    const c = createClassifier(OPTIONS);
    fc.assert(
      fc.property(fc.array(readTemplate, { minLength: 1, maxLength: 8 }), (texts) => {
        for (const sql of texts) {
          const got = c.classify(sql);
          if (got.kind === 'read' && classifyByParse(sql, OPTIONS).kind !== 'read') return false;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it('keeps writes on the primary with the same effect on the connection', () => {
    const statement = fc.oneof(
      rows.map((r) => `INSERT INTO t VALUES ${r}`),
      list.map((l) => `DELETE FROM t WHERE id IN (${l})`),
      list.map((l) => `UPDATE t SET a = 1 WHERE id IN (${l}) RETURNING *`),
      fc.constantFrom(
        'BEGIN',
        'COMMIT',
        'SET x = 1',
        'SET LOCAL x = 1',
        'SAVEPOINT a',
        'LISTEN c',
        "SELECT set_config('a', 'b', false)",
        'SELECT pg_advisory_lock(1)',
        'CREATE TEMP TABLE x (a int)',
        'SELECT 1',
        'INSERT INTO t SELECT pg_advisory_lock(1)',
      ),
    );
    // maxParseLength 1 forces the statement-by-statement path for every multi-statement text.
    const bounded = createClassifier({ ...OPTIONS, maxParseLength: 1 });
    const c = createClassifier(OPTIONS);
    fc.assert(
      fc.property(fc.array(statement, { minLength: 1, maxLength: 5 }), (parts) => {
        const sql = parts.join('; ');
        const expected = classifyByParse(sql, OPTIONS);
        for (const got of [c.classify(sql), bounded.classify(sql)]) {
          if (expected.kind === 'write' && got.kind !== 'write') return false;
          if (expected.reason === 'unparseable') continue; // the server rejects it whole
          if (got.transaction !== expected.transaction || got.session !== expected.session)
            return false;
        }
        return true;
      }),
      { numRuns: 1000 },
    );
  });
});
