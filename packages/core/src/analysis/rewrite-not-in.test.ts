import fc from 'fast-check';
import { parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadParser } from '../sql/index.js';
import { applyRewrites, findNotInCandidates } from './rewrite-not-in.js';

beforeAll(async () => {
  await loadParser();
});

function rewrite(sql: string): string | undefined {
  const candidates = findNotInCandidates(sql);
  return candidates.length === 0 ? undefined : applyRewrites(sql, candidates);
}

describe('findNotInCandidates', () => {
  it('rewrites a single NOT IN with the correlation qualified on both sides', () => {
    const sql = 'SELECT * FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)';
    const [c] = findNotInCandidates(sql);
    expect(c).toMatchObject({
      outer: { relation: 'customers', reference: 'customers', column: 'id' },
      inner: { relation: 'orders', reference: 'orders', column: 'customer_id' },
    });
    expect(rewrite(sql)).toBe(
      'SELECT * FROM customers WHERE NOT EXISTS (SELECT 1 FROM orders WHERE ' +
        '"customers"."id" = "orders"."customer_id")',
    );
  });

  it('keeps the subquery filter, aliases, other conditions and parameters', () => {
    const sql =
      'select c.name from public.customers c where c.active and c.id not in ' +
      '(select o.customer_id from sales.orders as o where o.amount > $1) order by 1 limit $2';
    expect(rewrite(sql)).toBe(
      'select c.name from public.customers c where c.active and NOT EXISTS (SELECT 1 from ' +
        'sales.orders as o WHERE (o.amount > $1) AND "c"."id" = "o"."customer_id") order by 1 limit $2',
    );
    const [c] = findNotInCandidates(sql);
    expect(c?.outer).toMatchObject({ schema: 'public', reference: 'c' });
    expect(c?.inner).toMatchObject({ schema: 'sales', reference: 'o' });
  });

  it('keeps non-ASCII text intact around the rewrite (byte offsets)', () => {
    const sql = "SELECT 'é' AS x FROM t WHERE a NOT IN (SELECT b FROM u WHERE u.n = 'ü')";
    expect(rewrite(sql)).toBe(
      'SELECT \'é\' AS x FROM t WHERE NOT EXISTS (SELECT 1 FROM u WHERE (u.n = \'ü\') AND "t"."a" = "u"."b")',
    );
  });

  it('rewrites every top-level NOT IN term', () => {
    const sql = 'SELECT * FROM t WHERE a NOT IN (SELECT x FROM u) AND b NOT IN (SELECT y FROM v)';
    const out = rewrite(sql);
    expect(out).toBe(
      'SELECT * FROM t WHERE NOT EXISTS (SELECT 1 FROM u WHERE "t"."a" = "u"."x") AND ' +
        'NOT EXISTS (SELECT 1 FROM v WHERE "t"."b" = "v"."y")',
    );
  });

  it.each([
    [
      'a join in the outer query',
      'SELECT * FROM t JOIN w ON w.id = t.id WHERE a NOT IN (SELECT b FROM u)',
    ],
    [
      'a join in the subquery',
      'SELECT * FROM t WHERE a NOT IN (SELECT u.b FROM u JOIN w ON w.id = u.id)',
    ],
    ['the same reference name inside', 'SELECT * FROM t WHERE a NOT IN (SELECT b FROM t)'],
    ['DISTINCT in the subquery', 'SELECT * FROM t WHERE a NOT IN (SELECT DISTINCT b FROM u)'],
    ['LIMIT in the subquery', 'SELECT * FROM t WHERE a NOT IN (SELECT b FROM u LIMIT 5)'],
    ['GROUP BY in the subquery', 'SELECT * FROM t WHERE a NOT IN (SELECT b FROM u GROUP BY b)'],
    [
      'a UNION in the subquery',
      'SELECT * FROM t WHERE a NOT IN (SELECT b FROM u UNION SELECT c FROM w)',
    ],
    ['an expression tested', 'SELECT * FROM t WHERE a + 1 NOT IN (SELECT b FROM u)'],
    ['an expression selected', 'SELECT * FROM t WHERE a NOT IN (SELECT b + 1 FROM u)'],
    ['a row comparison', 'SELECT * FROM t WHERE (a, c) NOT IN (SELECT b, d FROM u)'],
    ['a value list', 'SELECT * FROM t WHERE a NOT IN (1, 2, 3)'],
    ['NOT IN under OR', 'SELECT * FROM t WHERE c = 1 OR a NOT IN (SELECT b FROM u)'],
    ['NOT (a IN ...)', 'SELECT * FROM t WHERE NOT (a IN (SELECT b FROM u))'],
    ['a comment inside', 'SELECT * FROM t WHERE a NOT IN (SELECT b FROM u -- why\n)'],
    ['a column of another relation', 'SELECT * FROM t WHERE w.a NOT IN (SELECT b FROM u)'],
    ['an UPDATE', 'UPDATE t SET c = 1 WHERE a NOT IN (SELECT b FROM u)'],
    ['two statements', 'SELECT 1; SELECT * FROM t WHERE a NOT IN (SELECT b FROM u)'],
    ['unparseable text', 'SELECT * FROM t WHERE a NOT IN (SELECT b FROM'],
    ['IN without NOT', 'SELECT * FROM t WHERE a IN (SELECT b FROM u)'],
    [
      'column aliases on the subquery table',
      'SELECT * FROM t WHERE a NOT IN (SELECT x FROM u AS v(x))',
    ],
  ])('finds nothing with %s', (_label, sql) => {
    expect(findNotInCandidates(sql)).toEqual([]);
  });

  it('always produces a single parseable statement, and never throws', () => {
    const name = fc.constantFrom('a', 'b', 'id', '"Odd ""x"""', 'name', 'type');
    fc.assert(
      fc.property(name, name, fc.string(), (outer, inner, literal) => {
        const quoted = `'${literal.replaceAll("'", "''").replaceAll('\0', '')}'`;
        const sql = `SELECT * FROM t1 x WHERE x.${outer} NOT IN (SELECT ${inner} FROM t2 WHERE z = ${quoted})`;
        const out = rewrite(sql);
        expect(out).toEqual(expect.any(String));
        const parsed = parseSync(out!) as { stmts: unknown[] };
        expect(parsed.stmts).toHaveLength(1);
        expect(out).toContain(quoted);
      }),
      { numRuns: 200 },
    );
  });
});
