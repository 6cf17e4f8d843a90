import { describe, expect, it } from 'vitest';
import { parseHashBound, parseListBound } from './inspect.js';
import { listSuffix, planRange, rangeClause } from './plan.js';
import { partitionLockKey, partitionName, quoteLiteral } from './sql.js';
import { parsePartitionStrategy, type ResolvedRangeStrategy } from './strategy.js';
import { addPeriods, boundLiteral, periodStart, periodSuffix, retentionCutoff } from './time.js';

const at = (iso: string) => new Date(iso);

describe('periods in UTC', () => {
  it('floors an instant to its period start', () => {
    const t = at('2024-02-29T22:30:15.123Z');
    expect(periodStart(t, 'hourly').toISOString()).toBe('2024-02-29T22:00:00.000Z');
    expect(periodStart(t, 'daily').toISOString()).toBe('2024-02-29T00:00:00.000Z');
    // 29 Feb 2024 is a Thursday; ISO weeks start on Monday.
    expect(periodStart(t, 'weekly').toISOString()).toBe('2024-02-26T00:00:00.000Z');
    expect(periodStart(at('2024-03-03T23:59:59Z'), 'weekly').toISOString()).toBe(
      '2024-02-26T00:00:00.000Z',
    );
    expect(periodStart(at('2024-03-04T00:00:00Z'), 'weekly').toISOString()).toBe(
      '2024-03-04T00:00:00.000Z',
    );
    expect(periodStart(t, 'monthly').toISOString()).toBe('2024-02-01T00:00:00.000Z');
    expect(periodStart(t, 'yearly').toISOString()).toBe('2024-01-01T00:00:00.000Z');
  });

  it('steps over month ends, leap days and year ends', () => {
    const lastHour = at('2024-02-29T23:00:00Z');
    expect(addPeriods(lastHour, 'hourly', 1).toISOString()).toBe('2024-03-01T00:00:00.000Z');
    expect(addPeriods(at('2024-02-28T00:00:00Z'), 'daily', 1).toISOString()).toBe(
      '2024-02-29T00:00:00.000Z',
    );
    expect(addPeriods(at('2023-02-28T00:00:00Z'), 'daily', 1).toISOString()).toBe(
      '2023-03-01T00:00:00.000Z',
    );
    expect(addPeriods(at('2024-01-01T00:00:00Z'), 'daily', 60).toISOString()).toBe(
      '2024-03-01T00:00:00.000Z',
    );
    expect(addPeriods(at('2024-12-30T00:00:00Z'), 'weekly', 1).toISOString()).toBe(
      '2025-01-06T00:00:00.000Z',
    );
    expect(addPeriods(at('2024-11-01T00:00:00Z'), 'monthly', 3).toISOString()).toBe(
      '2025-02-01T00:00:00.000Z',
    );
    expect(addPeriods(at('2024-01-01T00:00:00Z'), 'yearly', -1).toISOString()).toBe(
      '2023-01-01T00:00:00.000Z',
    );
  });

  it('names each period by its start', () => {
    const start = at('2024-03-05T07:00:00Z');
    expect(periodSuffix(start, 'hourly')).toBe('p2024030507');
    expect(periodSuffix(start, 'daily')).toBe('p20240305');
    expect(periodSuffix(start, 'weekly')).toBe('p20240305');
    expect(periodSuffix(start, 'monthly')).toBe('p202403');
    expect(periodSuffix(start, 'yearly')).toBe('p2024');
  });

  it('writes bound literals from Dates, with an explicit offset for timestamptz', () => {
    const t = at('2024-02-29T23:00:00Z');
    expect(boundLiteral(t, 'timestamptz')).toBe("'2024-02-29 23:00:00+00'");
    expect(boundLiteral(t, 'timestamp')).toBe("'2024-02-29 23:00:00'");
    expect(boundLiteral(t, 'date')).toBe("'2024-02-29'");
    expect(rangeClause(t, at('2024-03-01T00:00:00Z'), 'timestamptz')).toBe(
      "FOR VALUES FROM ('2024-02-29 23:00:00+00') TO ('2024-03-01 00:00:00+00')",
    );
    expect(() => boundLiteral(new Date(Number.NaN), 'date')).toThrow(RangeError);
  });

  it('computes the retention cutoff, clamping calendar months', () => {
    const now = at('2024-03-31T10:00:00Z');
    expect(retentionCutoff(now, { olderThan: 1, unit: 'months' }).toISOString()).toBe(
      '2024-02-29T10:00:00.000Z',
    );
    expect(retentionCutoff(now, { olderThan: 13, unit: 'months' }).toISOString()).toBe(
      '2023-02-28T10:00:00.000Z',
    );
    expect(retentionCutoff(now, { olderThan: 7, unit: 'days' }).toISOString()).toBe(
      '2024-03-24T10:00:00.000Z',
    );
    expect(retentionCutoff(now, { olderThan: 36, unit: 'hours' }).toISOString()).toBe(
      '2024-03-29T22:00:00.000Z',
    );
  });
});

describe('range plan', () => {
  const strategy = parsePartitionStrategy({
    table: 'm',
    column: 'ts',
    type: 'range',
    interval: 'daily',
    premake: 2,
    retention: { olderThan: 2, unit: 'days' },
  }) as ResolvedRangeStrategy;
  const child = (name: string, from: string, to: string) => ({
    oid: name,
    schema: 'public',
    name,
    bound: '',
    isDefault: false,
    detachPending: false,
    subpartitioned: false,
    range: { from: Date.parse(from), to: Date.parse(to) },
  });

  it('creates the current period and premake ahead, skipping covered ones', () => {
    const plan = planRange(
      strategy,
      'timestamptz',
      [child('m_march', '2024-03-01T00:00Z', '2024-03-11T00:00Z')],
      at('2024-03-10T12:00:00Z'),
      { retention: true },
    );
    expect(plan.create.map((p) => p.name)).toEqual(['m_p20240311', 'm_p20240312']);
    expect(plan.conflicts).toEqual([]);
  });

  it('reports a wanted range that partly overlaps a foreign partition', () => {
    const plan = planRange(
      strategy,
      'timestamptz',
      [child('odd', '2024-03-11T12:00Z', '2024-03-12T12:00Z')],
      at('2024-03-10T12:00:00Z'),
      { retention: false },
    );
    expect(plan.create.map((p) => p.name)).toEqual(['m_p20240310']);
    expect(plan.conflicts.map((c) => [c.name, c.overlaps])).toEqual([
      ['m_p20240311', ['odd']],
      ['m_p20240312', ['odd']],
    ]);
  });

  it('retires partitions whose upper bound is at or before now - olderThan, never unbounded ones', () => {
    const children = [
      child('old', '2024-03-07T00:00Z', '2024-03-08T00:00Z'),
      child('edge', '2024-03-08T00:00Z', '2024-03-08T12:00Z'),
      child('young', '2024-03-08T12:00Z', '2024-03-09T00:00Z'),
      {
        ...child('min', '2024-01-01T00:00Z', '2024-01-02T00:00Z'),
        range: { from: -Infinity, to: Date.parse('2024-01-02T00:00Z') },
      },
      {
        ...child('max', '2024-04-01T00:00Z', '2024-04-02T00:00Z'),
        range: { from: Date.parse('2024-04-01T00:00Z'), to: Infinity },
      },
    ];
    const plan = planRange(strategy, 'timestamptz', children, at('2024-03-10T12:00:00Z'), {
      retention: true,
    });
    expect(plan.retire.map((c) => c.name)).toEqual(['min', 'old', 'edge']);
    const setup = planRange(strategy, 'timestamptz', children, at('2024-03-10T12:00:00Z'), {
      retention: false,
    });
    expect(setup.retire).toEqual([]);
  });
});

describe('names and literals', () => {
  it('keeps the suffix whole when the table name is long, without splitting a character', () => {
    const long = 'é'.repeat(40); // 80 bytes
    const name = partitionName(long, 'p20240310');
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(name.endsWith('_p20240310')).toBe(true);
    expect(name).toBe(`${'é'.repeat(26)}_p20240310`);
    expect(partitionName('market_data', 'p2024')).toBe('market_data_p2024');
  });

  it('quotes literals the way quote_literal does', () => {
    expect(quoteLiteral("o'brien")).toBe("'o''brien'");
    expect(quoteLiteral('a\\b')).toBe("E'a\\\\b'");
    expect(() => quoteLiteral('a\0b')).toThrow(RangeError);
  });

  it('makes readable list partition suffixes', () => {
    expect(listSuffix(['US', 'ca'], 0)).toBe('us_ca');
    expect(listSuffix(["O'Brien & co"], 1)).toBe('o_brien_co');
    expect(listSuffix(['€', '!'], 2)).toBe('l2');
  });

  it('parses list and hash bounds as pg_get_expr prints them', () => {
    expect(parseListBound("FOR VALUES IN ('a''b', 'c\\d', 'x', NULL)")).toEqual([
      "a'b",
      'c\\d',
      'x',
      null,
    ]);
    expect(parseListBound("FOR VALUES IN (1, '-2')")).toEqual(['1', '-2']);
    expect(parseListBound("FOR VALUES IN (E'a\\\\b')")).toEqual(['a\\b']);
    expect(parseListBound('DEFAULT')).toBeUndefined();
    expect(parseHashBound('FOR VALUES WITH (modulus 4, remainder 3)')).toEqual({
      modulus: 4,
      remainder: 3,
    });
  });

  it('derives one advisory-lock key per table', () => {
    expect(partitionLockKey('public', 'a')).toBe(partitionLockKey('public', 'a'));
    expect(partitionLockKey('public', 'a')).not.toBe(partitionLockKey('public', 'b'));
    expect(partitionLockKey('a.b', 'c')).not.toBe(partitionLockKey('a', 'b.c'));
    const key = partitionLockKey('public', 'market_data');
    expect(key >= -(2n ** 63n) && key < 2n ** 63n).toBe(true);
  });
});
