import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors/index.js';
import { loadParser } from '../sql/index.js';
import { fingerprintQuery, maskSqlText, UNREADABLE_STATEMENT } from './fingerprint.js';
import { LatencyHistogram } from './latency-histogram.js';
import { SlowQueryLog } from './slow-query-log.js';
import type { SlowQueryInput } from './slow-query-log-types.js';

beforeAll(async () => {
  await loadParser();
});

const call = (sql: string, durationMs: number, extra: Partial<SlowQueryInput> = {}) => ({
  sql,
  durationMs,
  node: 'primary',
  role: 'primary' as const,
  ...extra,
});

describe('fingerprintQuery', () => {
  it('groups texts that differ in literals, whitespace and comments', () => {
    const a = fingerprintQuery("SELECT * FROM users WHERE email = 'a@b.c' AND id = 1");
    const b = fingerprintQuery("select *  from users where email = 'x@y.z' and id = 99 -- hi");
    expect(a.source).toBe('libpg-query');
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(a.normalized).toBe('SELECT * FROM users WHERE email = $1 AND id = $2');
  });

  it('removes comments, which normalize keeps', () => {
    const f = fingerprintQuery('SELECT 1 /* token=s3cr3t */ -- pw hunter2\n');
    expect(f.normalized).toBe('SELECT $1');
  });

  it('masks unparseable text token by token, or withholds it', () => {
    const broken = fingerprintQuery("SELEC password FROM users WHERE pw = 'hunter2' AND n = 42 ((");
    expect(broken.source).toBe('hash');
    expect(broken.normalized).not.toContain('hunter2');
    expect(broken.normalized).not.toContain('42');
    expect(broken.normalized).toBe('SELEC password FROM users WHERE pw = ? AND n = ? ((');
    // Same shape, other literals: same hash fingerprint.
    expect(
      fingerprintQuery("SELEC password FROM users WHERE pw = 'x' AND n = 7 ((").fingerprint,
    ).toBe(broken.fingerprint);
    // libpg-query returns the scanner's error (quoting the literal) as the "fingerprint" and
    // "normalized text" of these: it must not get through.
    for (const text of ["SELECT 'hunter2", 'SELECT $$hunter2', 'SELECT 1 /* hunter2']) {
      const f = fingerprintQuery(text);
      expect(f.source).toBe('hash');
      expect(f.fingerprint).toMatch(/^[0-9a-f]{16}$/);
      expect(JSON.stringify(f)).not.toContain('hunter2');
    }
    expect(fingerprintQuery('SELECT 1\0; DROP').normalized).toBe(UNREADABLE_STATEMENT);
  });

  it('masks every literal form the scanner knows', () => {
    expect(maskSqlText("SELECT B'101', X'ff', E'a\\'b', 1e5, U&'x', $$d$$, $t$q$t$, $1")).toBe(
      'SELECT ?, ?, ?, ?, ?, ?, ?, $1',
    );
  });
});

describe('LatencyHistogram', () => {
  it('estimates percentiles within 5 %', () => {
    const h = new LatencyHistogram();
    const values = Array.from({ length: 10_000 }, (_, i) => 0.5 + ((i * 37) % 2000));
    for (const v of values) h.record(v);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of [0.5, 0.95, 0.99]) {
      const exact = sorted[Math.ceil(q * sorted.length) - 1]!;
      expect(Math.abs(h.quantile(q) - exact) / exact).toBeLessThan(0.05);
    }
    expect(h.quantile(1)).toBe(2499.5 - 500);
    expect(h.count).toBe(10_000);
  });

  it('handles nothing, zero, negative and non-finite durations', () => {
    const h = new LatencyHistogram();
    expect(h.quantile(0.95)).toBe(0);
    h.record(0);
    h.record(-5);
    h.record(Number.NaN);
    h.record(Number.POSITIVE_INFINITY);
    expect(h.quantile(0.95)).toBe(0);
  });

  it('stays within 5 % of the exact p95 for any data', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.02, max: 1e7, noNaN: true }), { minLength: 1, maxLength: 300 }),
        (values) => {
          const h = new LatencyHistogram();
          for (const v of values) h.record(v);
          const sorted = [...values].sort((a, b) => a - b);
          const exact = sorted[Math.ceil(0.95 * sorted.length) - 1]!;
          expect(Math.abs(h.quantile(0.95) - exact) / exact).toBeLessThan(0.05);
        },
      ),
    );
  });
});

describe('SlowQueryLog', () => {
  it('keeps statistics per fingerprint', () => {
    const log = new SlowQueryLog({ now: () => 1000 });
    const first = log.record(
      call('SELECT * FROM orders WHERE customer_id = 42', 120, { rows: 40 }),
    );
    expect(first).toMatchObject({ calls: 1, firstSeen: true });
    log.record(
      call('SELECT * FROM orders WHERE customer_id = 7', 80, {
        rows: 10,
        node: 'replica1',
        role: 'replica',
      }),
    );
    log.record(call('SELECT * FROM orders WHERE customer_id = 9', 100, { rows: null }));
    log.record(call('UPDATE orders SET amount = 0', 500));
    const [top, second] = log.entries();
    expect(top).toMatchObject({ query: 'UPDATE orders SET amount = $1', calls: 1, totalMs: 500 });
    expect(second).toMatchObject({
      fingerprint: first.fingerprint,
      query: 'SELECT * FROM orders WHERE customer_id = $1',
      fingerprintSource: 'libpg-query',
      calls: 3,
      totalMs: 300,
      meanMs: 100,
      minMs: 80,
      maxMs: 120,
      rows: 50,
      nodes: { primary: 2, replica1: 1 },
    });
    expect(second?.p95Ms).toBeGreaterThan(114);
    expect(second?.p95Ms).toBeLessThanOrEqual(120);
    expect(second?.samples.map((s) => s.durationMs)).toEqual([120, 80, 100]);
    expect(log.get(first.fingerprint)?.calls).toBe(3);
  });

  it('keeps only the latest samples in a ring', () => {
    const log = new SlowQueryLog({ samplesPerFingerprint: 2 });
    for (let i = 1; i <= 5; i++) log.record(call('SELECT 1', i));
    expect(log.entries()[0]?.samples.map((s) => s.durationMs)).toEqual([4, 5]);
    const none = new SlowQueryLog({ samplesPerFingerprint: 0 });
    none.record(call('SELECT 1', 1));
    expect(none.entries()[0]?.samples).toEqual([]);
  });

  it('evicts the least recently seen fingerprint and counts it', () => {
    const log = new SlowQueryLog({ maxFingerprints: 2 });
    log.record(call('SELECT 1 FROM a', 1));
    log.record(call('SELECT 1 FROM b', 1));
    log.record(call('SELECT 1 FROM a', 1)); // a is now the most recent
    log.record(call('SELECT 1 FROM c', 1));
    expect(log.size).toBe(2);
    expect(log.evictions).toBe(1);
    expect(
      log
        .entries()
        .map((e) => e.query)
        .sort(),
    ).toEqual(['SELECT $1 FROM a', 'SELECT $1 FROM c']);
  });

  it('never shows a literal or a parameter value unless asked (invariant 6)', () => {
    const log = new SlowQueryLog();
    log.record(call("ALTER ROLE app PASSWORD 'hunter2-literal'", 10, { params: undefined }));
    log.record(
      call('SELECT * FROM users WHERE email = $1 AND token = $2', 10, {
        params: ['alice@example.com', 'tok-hunter2-param'],
      }),
    );
    log.record(call("SELEC broken 'hunter2-broken' ((", 10));
    const json = JSON.stringify(log);
    for (const secret of [
      'hunter2-literal',
      'alice@example.com',
      'tok-hunter2-param',
      'hunter2-broken',
    ]) {
      expect(json).not.toContain(secret);
    }
    expect(json).toContain('ALTER ROLE app PASSWORD $1');
    const sample = log.entries().find((e) => e.query.includes('users'))?.samples[0];
    expect(sample).toMatchObject({ paramCount: 2 });
    expect(sample).not.toHaveProperty('params');
  });

  it('keeps bounded copies of parameter values when captureParams is set', () => {
    const log = new SlowQueryLog({ captureParams: true });
    const params = [
      1,
      'x'.repeat(1000),
      10n,
      new Date(0),
      Buffer.from('abc'),
      { a: 1 },
      null,
      undefined,
    ];
    log.record(call('SELECT $1', 1, { params }));
    params[0] = 2;
    const sample = log.toJSON().entries[0]?.samples[0];
    expect(log.toJSON().captureParams).toBe(true);
    expect(sample?.params).toEqual([
      1,
      `${'x'.repeat(256)}…`,
      '10',
      '1970-01-01T00:00:00.000Z',
      '<3 bytes>',
      '{"a":1}',
      null,
      null,
    ]);
  });

  it('never throws on odd input', () => {
    const log = new SlowQueryLog();
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), (sql, durationMs, rows) => {
        log.record({
          sql: sql as string,
          durationMs: durationMs as number,
          rows: rows as number,
          node: 'n',
          role: 'primary',
          params: sql as unknown[],
        });
      }),
    );
    expect(() => JSON.stringify(log)).not.toThrow();
  });

  it('rejects bad options with the field named', () => {
    expect(() => new SlowQueryLog({ maxFingerprints: 0 })).toThrow(ConfigError);
    expect(() => new SlowQueryLog({ samplesPerFingerprint: 1.5 })).toThrow(/samplesPerFingerprint/);
  });

  it('SlowQueryLog.create waits for the parser', async () => {
    const log = await SlowQueryLog.create();
    expect(log.record(call('SELECT 1', 1)).fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });
});
