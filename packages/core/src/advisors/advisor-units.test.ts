import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createIndexSql,
  indexLockKey,
  indexNames,
  MAX_IDENTIFIER_BYTES,
  quoteLiteral,
  truncateBytes,
} from '../sql/index.js';
import { estimateBloat } from './bloat.js';
import type { IndexInfo, IndexKey } from './catalog.js';
import { coveringIndex, coversForeignKey } from './coverage.js';
import { findDuplicates } from './duplicates.js';
import { constantEqualities } from './partial.js';
import { ddlFailure } from './sql.js';

const INT4_OPS = 1978;

function key(attnum: number, column: string, option = 0): IndexKey {
  return { attnum, column, definition: column, opclass: INT4_OPS, collation: 0, option };
}

let nextOid = 1000;
function index(name: string, keys: IndexKey[], extra: Partial<IndexInfo> = {}): IndexInfo {
  return {
    oid: nextOid++,
    tableOid: 1,
    schema: 'public',
    table: 't',
    tableKind: 'r',
    name,
    kind: 'i',
    method: 'btree',
    unique: false,
    primary: false,
    exclusion: false,
    nullsNotDistinct: false,
    valid: true,
    ready: true,
    isPartition: false,
    replicaIdentity: false,
    keys,
    include: [],
    includeNames: [],
    predicate: undefined,
    definition: `CREATE INDEX ${name} ON public.t USING btree (...)`,
    sizeBytes: 8192,
    constraints: [],
    scans: 0,
    lastScanAt: undefined,
    building: false,
    relpages: 1,
    reltuples: 0,
    fillfactor: undefined,
    temporary: false,
    ...extra,
  };
}

const a = key(1, 'a');
const b = key(2, 'b');
const c = key(3, 'c');
const names = (indexes: IndexInfo[]) => findDuplicates(indexes).map((d) => d.name);

describe('findDuplicates (pghero rule on catalog facts)', () => {
  it('reports a prefix, keeps the covering index', () => {
    const dups = findDuplicates([index('t_a', [a]), index('t_a_b', [a, b])]);
    expect(dups).toHaveLength(1);
    expect(dups[0]).toMatchObject({
      name: 't_a',
      coveredBy: { name: 't_a_b' },
      sql: 'DROP INDEX CONCURRENTLY IF EXISTS "public"."t_a"',
    });
  });

  it('reports one of two identical indexes (the later name)', () => {
    expect(names([index('t_a_1', [a]), index('t_a_2', [a])])).toEqual(['t_a_2']);
  });

  it('never drops a unique index for a non-unique one, nor a primary key', () => {
    expect(names([index('u_a', [a], { unique: true }), index('t_a_b', [a, b])])).toEqual([]);
    const pk = index('t_pkey', [a], { unique: true, primary: true, constraints: ['t_pkey'] });
    expect(names([pk, index('t_a_b', [a, b])])).toEqual([]);
  });

  it('drops a plain unique index identical to a primary key or another unique index', () => {
    const pk = index('t_pkey', [a], { unique: true, primary: true, constraints: ['t_pkey'] });
    expect(names([pk, index('a_copy', [a], { unique: true })])).toEqual(['a_copy']);
    expect(
      names([index('u_1', [a], { unique: true }), index('u_2', [a], { unique: true })]),
    ).toEqual(['u_2']);
    // NULLS NOT DISTINCT enforces more: not identical.
    expect(
      names([
        index('u_1', [a], { unique: true, nullsNotDistinct: true }),
        index('u_2', [a], { unique: true }),
      ]),
    ).toEqual([]);
  });

  it('never drops an index a constraint needs (unique constraint, FK target)', () => {
    const constrained = index('u_a', [a], { unique: true, constraints: ['t_a_key'] });
    expect(names([constrained, index('u_a_copy', [a], { unique: true })])).toEqual(['u_a_copy']);
    expect(names([constrained, index('zz', [a], { unique: true, constraints: ['fk'] })])).toEqual(
      [],
    );
  });

  it('requires the same method, predicate, direction, operator class and expressions', () => {
    expect(names([index('h_a', [a], { method: 'hash' }), index('t_a_b', [a, b])])).toEqual([]);
    expect(names([index('p_a', [a], { predicate: '(a > 0)' }), index('t_a_b', [a, b])])).toEqual(
      [],
    );
    expect(
      names([
        index('p_a', [a], { predicate: '(a > 0)' }),
        index('p_a_b', [a, b], { predicate: '(a > 0)' }),
      ]),
    ).toEqual(['p_a']);
    expect(names([index('d_a', [key(1, 'a', 3)]), index('t_a_b', [a, b])])).toEqual([]);
    expect(names([index('o_a', [{ ...a, opclass: 3126 }]), index('t_a_b', [a, b])])).toEqual([]);
    const lower = {
      attnum: 0,
      column: undefined,
      definition: 'lower(x)',
      opclass: 0,
      collation: 0,
      option: 0,
    };
    const upper = { ...lower, definition: 'upper(x)' };
    expect(names([index('e_1', [lower]), index('e_2', [lower, b])])).toEqual(['e_1']);
    expect(names([index('e_1', [lower]), index('e_2', [upper, b])])).toEqual([]);
  });

  it('a prefix counts only for btree; other methods need identical keys', () => {
    expect(
      names([index('g_a', [a], { method: 'gist' }), index('g_a_b', [a, b], { method: 'gist' })]),
    ).toEqual([]);
    expect(
      names([index('g_1', [a], { method: 'gist' }), index('g_2', [a], { method: 'gist' })]),
    ).toEqual(['g_2']);
  });

  it('keeps an index whose INCLUDE columns the longer one lacks', () => {
    expect(names([index('t_a_inc_c', [a], { include: [3] }), index('t_a_b', [a, b])])).toEqual([]);
    expect(names([index('t_a_inc_b', [a], { include: [2] }), index('t_a_b', [a, b])])).toEqual([
      't_a_inc_b',
    ]);
  });

  it('skips invalid, partition and partitioned-table indexes', () => {
    expect(names([index('t_a', [a], { valid: false }), index('t_a_b', [a, b])])).toEqual([]);
    expect(names([index('t_a', [a]), index('t_a_b', [a, b], { valid: false })])).toEqual([]);
    expect(names([index('t_a', [a], { isPartition: true }), index('t_a_b', [a, b])])).toEqual([]);
    expect(
      names([index('t_a', [a], { tableKind: 'p', kind: 'I' }), index('t_a_b', [a, b])]),
    ).toEqual([]);
  });

  it('a chain is reported against its longest index', () => {
    const dups = findDuplicates([
      index('t_a', [a]),
      index('t_a_b', [a, b]),
      index('t_a_b_c', [a, b, c]),
    ]);
    expect(dups.map((d) => [d.name, d.coveredBy.name]).sort()).toEqual([
      ['t_a', 't_a_b_c'],
      ['t_a_b', 't_a_b_c'],
    ]);
  });
});

describe('coverage', () => {
  const shape = { schema: 'public', table: 't', columns: ['a', 'b'] };
  it('a valid btree leading with the columns covers, in either scan direction', () => {
    expect(coveringIndex([index('x', [a, b, c])], 1, shape, [])?.name).toBe('x');
    expect(coveringIndex([index('x', [b, a])], 1, shape, [])).toBeUndefined();
    expect(coveringIndex([index('x', [a])], 1, shape, [])).toBeUndefined();
    const desc = { ...shape, order: ['desc', 'desc'] as const };
    expect(coveringIndex([index('x', [a, b])], 1, desc, [])?.name).toBe('x');
    const mixed = { ...shape, order: ['asc', 'desc'] as const };
    expect(coveringIndex([index('x', [a, b])], 1, mixed, [])).toBeUndefined();
    expect(coveringIndex([index('x', [a, key(2, 'b', 3)])], 1, mixed, [])?.name).toBe('x');
  });

  it('invalid, partial (unless ours), other-method and other-table indexes do not cover', () => {
    expect(coveringIndex([index('x', [a, b], { valid: false })], 1, shape, [])).toBeUndefined();
    expect(coveringIndex([index('x', [a, b], { method: 'hash' })], 1, shape, [])).toBeUndefined();
    expect(coveringIndex([index('x', [a, b], { tableOid: 2 })], 1, shape, [])).toBeUndefined();
    const partial = index('ours', [a, b], { predicate: "(s = 'x'::text)" });
    expect(coveringIndex([partial], 1, shape, ['ours'])).toBeUndefined();
    const withPredicate = { ...shape, predicate: { column: 's', value: 'x' } };
    expect(coveringIndex([partial], 1, withPredicate, ['ours'])?.name).toBe('ours');
    expect(coveringIndex([partial], 1, withPredicate, ['other'])).toBeUndefined();
  });

  it('a foreign key is covered by leading columns in any order', () => {
    const fk = {
      constraint: 'fk',
      tableOid: 1,
      schema: 'public',
      table: 't',
      tableKind: 'r',
      attnums: [1, 2],
      columns: ['a', 'b'],
      referencedSchema: 'public',
      referencedTable: 'p',
      rows: 0,
      referencedChanges: 0,
    };
    expect(coversForeignKey([index('x', [b, a, c])], fk)).toBe(true);
    expect(coversForeignKey([index('x', [a, c, b])], fk)).toBe(false);
    expect(coversForeignKey([index('x', [a])], fk)).toBe(false);
    expect(coversForeignKey([index('x', [a, b], { predicate: '(a > 0)' })], fk)).toBe(false);
  });
});

describe('partial predicates from Filter text', () => {
  it('reads column = constant conjuncts as ruleutils prints them', () => {
    expect(constantEqualities("((status = 'open'::text) AND (customer_id = 42))")).toEqual([
      { column: 'status', value: 'open' },
      { column: 'customer_id', value: '42' },
    ]);
    expect(constantEqualities("((t.status)::text = 'it''s'::text)", 't')).toEqual([
      { column: 'status', qualifier: 't', value: "it's" },
    ]);
    expect(constantEqualities(`("Weird ""Col""" = 'x'::"My Type")`)).toEqual([
      { column: 'Weird "Col"', value: 'x' },
    ]);
  });

  it('ignores disjunctions, other operators, expressions, redacted and escaped literals', () => {
    expect(constantEqualities("((status = 'open'::text) OR (a = 1))")).toEqual([]);
    expect(constantEqualities("(status <> 'open'::text)")).toEqual([]);
    expect(constantEqualities("(lower(status) = 'open'::text)")).toEqual([]);
    expect(constantEqualities("(status = '?'::text)")).toEqual([]);
    expect(constantEqualities('(a = ?)')).toEqual([]);
    expect(constantEqualities("(status = E'a\\\\b'::text)")).toEqual([]);
    expect(constantEqualities("(status = ('a'::text || 'b'::text))")).toEqual([]);
    expect(constantEqualities("(o.status = 'x'::text)", 'other')).toEqual([]);
  });

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        expect(() => constantEqualities(text)).not.toThrow();
      }),
    );
  });
});

describe('DDL building blocks', () => {
  it('names like PostgreSQL, within 63 bytes, a digest when needed', () => {
    const shape = { schema: 'public', table: 'orders', columns: ['customer_id'] };
    expect(indexNames(shape).plain).toBe('orders_customer_id_idx');
    expect(indexNames({ ...shape, columns: ['a', 'b'], order: ['asc', 'desc'] }).plain).toBe(
      'orders_a_b_desc_idx',
    );
    const partial = indexNames({ ...shape, predicate: { column: 's', value: 'x' } });
    const other = indexNames({ ...shape, predicate: { column: 's', value: 'y' } });
    expect(partial.plain).toMatch(/^orders_customer_id_[0-9a-f]{8}_idx$/);
    expect(partial.plain).not.toBe(other.plain);
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 3 }),
        (table, columns) => {
          const n = indexNames({ schema: 's', table, columns });
          expect(Buffer.byteLength(n.plain)).toBeLessThanOrEqual(MAX_IDENTIFIER_BYTES);
          expect(Buffer.byteLength(n.hashed)).toBeLessThanOrEqual(MAX_IDENTIFIER_BYTES);
        },
      ),
    );
  });

  it('truncates on character boundaries', () => {
    expect(truncateBytes('ééé', 5)).toBe('éé');
    expect(truncateBytes('a😀b', 4)).toBe('a');
  });

  it('quotes identifiers and literals in the statement', () => {
    expect(
      createIndexSql(
        {
          schema: 'My "S"',
          table: 'T"; DROP TABLE x; --',
          columns: ['c"1', 'd'],
          order: ['asc', 'desc'],
          predicate: { column: 'st', value: "o'pen\\" },
        },
        'n"x',
      ),
    ).toBe(
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS "n""x" ON "My ""S"""."T""; DROP TABLE x; --" ' +
        `USING btree ("c""1", "d" DESC) WHERE ("st" = E'o''pen\\\\')`,
    );
    expect(quoteLiteral('plain')).toBe("'plain'");
    expect(() => quoteLiteral('a\0b')).toThrow(RangeError);
  });

  it('derives a stable advisory-lock key per table', () => {
    expect(indexLockKey('public', 'orders')).toBe(indexLockKey('public', 'orders'));
    expect(indexLockKey('public', 'orders')).not.toBe(indexLockKey('public', 'order'));
    expect(indexLockKey('ab', 'c')).not.toBe(indexLockKey('a', 'bc'));
    const k = indexLockKey('s', 't');
    expect(k >= -(2n ** 63n) && k < 2n ** 63n).toBe(true);
  });

  it('withholds messages that may quote values', () => {
    const unique = Object.assign(new Error('Key (email)=(a@b.c) is duplicated.'), {
      code: '23505',
    });
    expect(ddlFailure('CREATE', unique).message).not.toContain('a@b.c');
    const timeout = Object.assign(new Error('canceling statement due to lock timeout'), {
      code: '55P03',
    });
    const failure = ddlFailure('CREATE', timeout);
    expect(failure.message).toContain('lock timeout');
    expect(failure.retriable).toBe(true);
  });
});

describe('statistics bloat estimate', () => {
  it('matches a fresh 200k-row int4 index and flags one with 90% fewer entries', () => {
    const widths = [{ width: 4, nullFrac: 0 }];
    // Figures of a freshly built index on 200 000 int4 values (PostgreSQL 18, 8 kB pages).
    const fresh = estimateBloat(
      { relpages: 551, reltuples: 200_000, fillfactor: undefined },
      widths,
      8192,
    );
    expect(fresh!.bloatBytes / fresh!.totalBytes).toBeLessThan(0.05);
    const thinned = estimateBloat(
      { relpages: 551, reltuples: 20_000, fillfactor: undefined },
      widths,
      8192,
    );
    expect(thinned!.bloatBytes / thinned!.totalBytes).toBeGreaterThan(0.85);
  });

  it('gives nothing without statistics', () => {
    const widths = [{ width: 4, nullFrac: 0 }];
    expect(
      estimateBloat({ relpages: 551, reltuples: -1, fillfactor: undefined }, widths, 8192),
    ).toBeUndefined();
    expect(
      estimateBloat({ relpages: 551, reltuples: 10, fillfactor: undefined }, [undefined], 8192),
    ).toBeUndefined();
  });
});
