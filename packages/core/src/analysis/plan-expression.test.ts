import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ExplainResult } from './plan.js';
import {
  expressionColumns,
  filterColumns,
  redactExpression,
  sortKeyColumn,
  tokenizeExpression,
} from './plan-expression.js';
import { redactPlan } from './redact-plan.js';

describe('filterColumns', () => {
  it.each<[string, string | undefined, string[]]>([
    ['(customer_id = 42)', undefined, ['customer_id']],
    ["((t.col)::text = 'x'::text)", 't', ['col']],
    ["((status)::text = 'paid'::text)", undefined, ['status']],
    ["((amount > '1'::numeric) AND ((customer_id % 2) = 0))", undefined, ['amount', 'customer_id']],
    ['((customer_id = 42) AND (amount > 10))', undefined, ['customer_id', 'amount']],
    // Equality columns lead, as a btree index would want them.
    ['((amount > 10) AND (customer_id = 42))', undefined, ['customer_id', 'amount']],
    ['(("Weird Col" > 5) AND (lower(email) = \'a@b.c\'::text))', undefined, ['Weird Col', 'email']],
    ['("a""b" IS NULL)', undefined, ['a"b']],
    ["(customer_id = ANY ('{1,2,3}'::integer[]))", undefined, ['customer_id']],
    ['((o.customer_id = 42) OR (o.region = c.region))', 'o', ['customer_id', 'region']],
    ['(id = o.customer_id)', 'c', ['id']],
    [
      "(created_at > '2024-01-01 00:00:00+00'::timestamp with time zone)",
      undefined,
      ['created_at'],
    ],
    ['((amount)::numeric(10,2) > 5.5)', undefined, ['amount']],
    ['(NOT (ANY (ref = (hashed SubPlan 1).col1)))', undefined, ['ref']],
    ['(NOT (ANY (id = (SubPlan 1).col1)))', undefined, ['id']],
    ['(customer_id = $1)', undefined, ['customer_id']],
    ["(name ~~ 'abc%'::text)", undefined, ['name']],
    ['(flag IS TRUE)', undefined, ['flag']],
    ['(active = true)', undefined, ['active']],
    ["(ctid = '(0,1)'::tid)", undefined, []],
    ["(payload ->> 'k'::text) = 'v'::text", undefined, ['payload']],
    ["(E'it''s' = name)", undefined, ['name']],
    ['(public.f(x) > 1)', undefined, ['x']],
    // A field of a composite column still names the column.
    ['((c.data).field = 1)', undefined, ['data']],
    ['(arr[1] = 5)', undefined, ['arr']],
    ['', undefined, []],
  ])('%s (alias %s)', (expression, alias, expected) => {
    expect(filterColumns(expression, alias)).toEqual(expected);
  });

  it('marks equality per column', () => {
    expect(expressionColumns('((a = 1) AND (b > 2) AND (a < 9))')).toEqual([
      { name: 'a', equality: true },
      { name: 'b', equality: false },
    ]);
    expect(expressionColumns('((t.a)::text = $1)', 't')).toEqual([
      { name: 'a', qualifier: 't', equality: true },
    ]);
  });

  it('never throws and never reports a literal', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), (text, secret) => {
        const literal = `'${secret.replaceAll("'", "''")}'`;
        const columns = filterColumns(`(${text} = ${literal}::text)`);
        expect(Array.isArray(columns)).toBe(true);
        tokenizeExpression(text);
      }),
    );
  });
});

describe('redactExpression', () => {
  it.each([
    ["(password = 'hunter2'::text)", "(password = '?'::text)"],
    ['(customer_id = 42)', '(customer_id = ?)'],
    [
      "((amount > '1.5'::numeric(10,2)) AND (x = -3.5e10))",
      "((amount > '?'::numeric(10,2)) AND (x = -?))",
    ],
    ["(name = E'it\\'s')", "(name = '?')"],
    ['(NOT (ANY (id = (SubPlan 1).col1)))', '(NOT (ANY (id = (SubPlan 1).col1)))'],
    ['(customer_id = $1)', '(customer_id = $1)'],
    ["(note = 'unterminated", "(note = '?'"],
  ])('%s -> %s', (input, expected) => {
    expect(redactExpression(input)).toBe(expected);
  });

  it('removes any quoted value whatever it holds', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 3 }), (secret) => {
        fc.pre(/^[A-Za-z0-9]+$/.test(secret));
        const text = `((col = '${secret}'::text) AND (n = ${secret.length}))`;
        expect(redactExpression(text)).not.toContain(secret);
      }),
    );
  });
});

describe('sortKeyColumn', () => {
  it.each([
    ['created_at DESC', { name: 'created_at', descending: true }],
    ['o.id', { name: 'id', qualifier: 'o', descending: false }],
    ['"Col" NULLS FIRST', { name: 'Col', descending: false, nullsFirst: true }],
    ['amount DESC NULLS LAST', { name: 'amount', descending: true, nullsFirst: false }],
    ['(lower(name))', undefined],
    ['(a + b)', undefined],
  ])('%s', (key, expected) => {
    expect(sortKeyColumn(key)).toEqual(expected);
  });
});

describe('redactPlan', () => {
  it('masks literals in every expression and keeps names, numbers and structure', () => {
    const plan = {
      Plan: {
        'Node Type': 'Index Scan',
        'Relation Name': 'users',
        Alias: 'u',
        'Index Name': 'users_email_idx',
        'Index Cond': "((email)::text = 'alice@example.com'::text)",
        Filter: "(api_key = 'k-123')",
        Output: ['id', "(token || 'salt-xyz'::text)"],
        'Total Cost': 8.3,
        'Query Text': "SELECT * FROM users WHERE api_key = 'k-123'",
        Plans: [{ 'Node Type': 'Function Scan', 'Function Call': 'generate_series(1, 424242)' }],
      },
      Settings: { work_mem: '64kB' },
      Triggers: [{ 'Trigger Name': 'audit_1', Relation: 'users', Calls: 2 }],
    } as unknown as ExplainResult;
    const redacted = redactPlan(plan);
    const text = JSON.stringify(redacted);
    for (const secret of ['alice@example.com', 'k-123', 'salt-xyz', '424242']) {
      expect(text).not.toContain(secret);
    }
    expect(redacted.Plan).toMatchObject({
      'Node Type': 'Index Scan',
      'Relation Name': 'users',
      'Index Name': 'users_email_idx',
      'Index Cond': "((email)::text = '?'::text)",
      Output: ['id', "(token || '?'::text)"],
      'Total Cost': 8.3,
    });
    expect(redacted.Plan).not.toHaveProperty('Query Text');
    expect(redacted.Settings).toEqual({ work_mem: '64kB' });
    expect(redacted.Triggers).toEqual([{ 'Trigger Name': 'audit_1', Relation: 'users', Calls: 2 }]);
    // The original is left untouched.
    expect(plan.Plan.Filter).toBe("(api_key = 'k-123')");
  });
});
