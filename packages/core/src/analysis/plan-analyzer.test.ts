import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ExplainResult, type PlanNode, parseExplainJson } from './plan.js';
import {
  analyzePlan,
  type PlanAnalyzerOptions,
  type PlanFinding,
  type PlanFindingKind,
  worstSeverity,
} from './plan-analyzer.js';
import { redactPlan } from './redact-plan.js';

interface Fixture {
  readonly plan: ExplainResult;
  readonly relationRows: Readonly<Record<string, number>>;
}

/** Plans captured from the sandbox (PostgreSQL 18) by fixtures.capture.test.ts. */
function fixture(name: string): Fixture {
  const text = readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8');
  const raw = JSON.parse(text) as { rows: unknown; relationRows: Record<string, number> };
  return { plan: parseExplainJson(raw.rows), relationRows: raw.relationRows };
}

function analyze(name: string, options: PlanAnalyzerOptions = {}): PlanFinding[] {
  const { plan, relationRows } = fixture(name);
  return analyzePlan(plan, { relationRows: (r) => relationRows[r], ...options });
}

function only(findings: readonly PlanFinding[], kind: PlanFindingKind): PlanFinding {
  const matching = findings.filter((f) => f.kind === kind);
  expect(matching, `one ${kind} finding in ${JSON.stringify(findings)}`).toHaveLength(1);
  return matching[0]!;
}

describe('analyzePlan on captured plans', () => {
  it('seq-scan from EXPLAIN ANALYZE: names the table and the filter column', () => {
    const f = only(analyze('seq-scan-analyze'), 'seq-scan');
    expect(f).toMatchObject({
      severity: 'critical',
      relation: 'orders',
      columns: ['customer_id'],
      nodeType: 'Seq Scan',
      path: '$',
      estimated: false,
    });
    expect(f.metrics.rowsScanned).toBe(200_000);
    expect(f.metrics.removedFraction).toBeGreaterThan(0.99);
    expect(f.suggestion).toContain('orders (customer_id)');
  });

  it('seq-scan from a plain EXPLAIN needs the table size', () => {
    const f = only(analyze('seq-scan-plain'), 'seq-scan');
    expect(f).toMatchObject({ severity: 'critical', columns: ['customer_id'], estimated: true });
    const { plan } = fixture('seq-scan-plain');
    expect(analyzePlan(plan).filter((x) => x.kind === 'seq-scan')).toEqual([]);
  });

  it('seq-scan under Gather in a generic plan scales the per-worker estimate', () => {
    const f = only(analyze('seq-scan-generic-parallel'), 'seq-scan');
    expect(f).toMatchObject({ path: '$.Plans[0]', alias: 'o', estimated: true });
    // Equality columns first: `customer_id = $1` before `amount > $2`.
    expect(f.columns).toEqual(['customer_id', 'amount']);
  });

  it('seq-scan under an UPDATE (plain EXPLAIN of a write)', () => {
    const f = only(analyze('update-plain'), 'seq-scan');
    expect(f).toMatchObject({ path: '$.Plans[0]', relation: 'orders', columns: ['customer_id'] });
  });

  it('seq-scan below the size threshold is not reported', () => {
    expect(analyze('seq-scan-analyze', { largeTableRows: 1_000_000 })).toEqual([]);
  });

  it('disk-sort: external merge, with work_mem and index advice', () => {
    const f = only(analyze('disk-sort'), 'disk-sort');
    expect(f.severity).toBe('warning');
    expect(f.columns).toEqual(['amount', 'created_at']);
    expect(f.metrics.sortSpaceKb).toBeGreaterThan(0);
    expect(f.suggestion).toMatch(/work_mem/);
  });

  it('disk-hash: a hash with several batches', () => {
    const f = only(analyze('disk-hash'), 'disk-hash');
    expect(f.nodeType).toBe('Hash');
    expect(f.metrics.batches).toBeGreaterThan(1);
  });

  it('disk-hash: a hash aggregate spilling to disk', () => {
    const f = only(analyze('hashagg-disk'), 'disk-hash');
    expect(f.nodeType).toBe('Aggregate');
    expect(f.metrics.diskKb).toBeGreaterThan(0);
  });

  it('nested-loop re-reading an unindexed inner table is critical and names the join column', () => {
    const f = only(analyze('nested-loop-seq'), 'nested-loop');
    expect(f).toMatchObject({ severity: 'critical', relation: 'small_b', columns: ['a_id'] });
    expect(f.metrics.loops).toBe(1500);
  });

  it('nested-loop with 200k index lookups is a warning', () => {
    const f = only(analyze('nested-loop-index'), 'nested-loop');
    expect(f).toMatchObject({ severity: 'warning', relation: 'customers' });
    expect(analyze('nested-loop-index', { nestedLoopLoops: 10_000 })).toEqual(
      expect.not.arrayContaining([expect.objectContaining({ kind: 'nested-loop' })]),
    );
  });

  it('sort-under-limit: 200k rows sorted for 10, direction kept', () => {
    const f = only(analyze('sort-under-limit'), 'sort-under-limit');
    expect(f).toMatchObject({ relation: 'orders', columns: ['created_at'], order: ['desc'] });
    expect(f.metrics).toMatchObject({ rowsSorted: 200_000, limit: 10 });
    expect(f.suggestion).toContain('created_at DESC');
  });

  it('heap-fetches on an index-only scan with a stale visibility map', () => {
    const f = only(analyze('heap-fetches'), 'heap-fetches');
    expect(f.severity).toBe('critical');
    expect(f.suggestion).toMatch(/VACUUM events/);
  });

  it('row-estimate: correlated columns misestimated 2000x, reported where it starts', () => {
    const findings = analyze('row-estimate');
    const f = only(findings, 'row-estimate');
    expect(f).toMatchObject({ severity: 'critical', relation: 'correlated' });
    expect(f.metrics.factor).toBeGreaterThan(1000);
    expect(f.columns).toEqual(['a', 'b', 'c']);
    expect(f.suggestion).toMatch(/CREATE STATISTICS/);
  });

  it('row-estimate severities follow pev2: >10 info, >100 warning, >1000 critical', () => {
    const node = (actual: number): PlanNode => ({
      'Node Type': 'Seq Scan',
      'Relation Name': 't',
      'Plan Rows': 10,
      'Actual Rows': actual,
      'Actual Loops': 1,
    });
    const severity = (actual: number) =>
      analyzePlan(node(actual)).find((f) => f.kind === 'row-estimate')?.severity;
    expect(severity(100)).toBeUndefined();
    expect(severity(101)).toBe('info');
    expect(severity(1001)).toBe('warning');
    expect(severity(10_001)).toBe('critical');
  });

  it('row-estimate: over-estimates under a LIMIT are expected, not reported', () => {
    const plan: PlanNode = {
      'Node Type': 'Limit',
      'Plan Rows': 10,
      'Actual Rows': 10,
      'Actual Loops': 1,
      Plans: [
        {
          'Node Type': 'Seq Scan',
          'Relation Name': 't',
          'Plan Rows': 100_000,
          'Actual Rows': 10,
          'Actual Loops': 1,
        },
      ],
    };
    expect(analyzePlan(plan)).toEqual([]);
  });

  it('rows-removed: an index scan whose filter discards most fetched rows', () => {
    const f = only(analyze('rows-removed'), 'rows-removed');
    expect(f).toMatchObject({ severity: 'warning', relation: 'events', columns: ['kind'] });
  });

  it('lossy-bitmap: a bitmap heap scan beyond work_mem', () => {
    const f = only(analyze('lossy-bitmap'), 'lossy-bitmap');
    expect(f.metrics.lossyBlocks).toBeGreaterThan(0);
  });

  it('orders findings by severity and honours maxFindings', () => {
    const findings = analyze('row-estimate');
    expect(findings.map((f) => f.severity)).toEqual(['critical', 'critical']);
    expect(analyze('row-estimate', { maxFindings: 1 })).toHaveLength(1);
    expect(worstSeverity(findings)).toBe('critical');
    expect(worstSeverity([])).toBeUndefined();
  });

  it('reads a redacted plan the same way', () => {
    for (const name of ['seq-scan-analyze', 'rows-removed', 'sort-under-limit', 'row-estimate']) {
      const { plan, relationRows } = fixture(name);
      const options = { relationRows: (r: string) => relationRows[r] };
      expect(analyzePlan(redactPlan(plan), options)).toEqual(analyzePlan(plan, options));
    }
  });

  it('never quotes a literal of the plan in a message or suggestion', () => {
    const plan: PlanNode = {
      'Node Type': 'Seq Scan',
      'Relation Name': 'users',
      Filter: "((password)::text = 'hunter2'::text)",
      'Plan Rows': 1,
      'Actual Rows': 1,
      'Actual Loops': 1,
      'Rows Removed by Filter': 500_000,
    };
    const findings = analyzePlan(plan);
    expect(findings[0]?.columns).toEqual(['password']);
    expect(JSON.stringify(findings)).not.toContain('hunter2');
  });
});

describe('analyzePlan on arbitrary input', () => {
  const keys = [
    'Node Type',
    'Relation Name',
    'Alias',
    'Filter',
    'Index Cond',
    'Sort Key',
    'Sort Space Type',
    'Sort Method',
    'Sort Space Used',
    'Hash Batches',
    'Original Hash Batches',
    'HashAgg Batches',
    'Disk Usage',
    'Plan Rows',
    'Actual Rows',
    'Actual Loops',
    'Rows Removed by Filter',
    'Heap Fetches',
    'Lossy Heap Blocks',
    'Workers Planned',
    'Parallel Aware',
    'Parent Relationship',
    'Join Type',
    'Cache Misses',
    'Workers',
    'Full-sort Groups',
  ] as const;
  const value = fc.oneof(
    fc.constantFrom(
      'Seq Scan',
      'Nested Loop',
      'Limit',
      'Sort',
      'Hash',
      'Aggregate',
      'Index Only Scan',
      'Bitmap Heap Scan',
      'Memoize',
      'Gather',
      'Disk',
      'Inner',
      'Anti',
      '(a = 1)',
    ),
    fc.double(),
    fc.integer(),
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 3 }),
    fc.dictionary(fc.string(), fc.anything(), { maxKeys: 3 }),
  );
  const node: fc.Memo<unknown> = fc.memo((depth) =>
    fc.oneof(
      { depthSize: 'small' },
      fc.anything(),
      fc.record(
        {
          ...Object.fromEntries(keys.map((k) => [k, value])),
          Plans: depth > 1 ? fc.array(node(depth - 1), { maxLength: 3 }) : fc.anything(),
        },
        { requiredKeys: [] },
      ),
    ),
  );

  it('never throws and always returns well-formed findings', () => {
    fc.assert(
      fc.property(node(5), fc.option(fc.anything()), (plan, options) => {
        const findings = analyzePlan(plan as PlanNode, options as PlanAnalyzerOptions);
        expect(Array.isArray(findings)).toBe(true);
        for (const f of findings) {
          expect(['info', 'warning', 'critical']).toContain(f.severity);
          expect(typeof f.message).toBe('string');
          expect(typeof f.path).toBe('string');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on a plan wrapped as EXPLAIN output either', () => {
    fc.assert(
      fc.property(node(4), (plan) => {
        expect(() => analyzePlan({ Plan: plan } as ExplainResult)).not.toThrow();
        expect(() => redactPlan({ Plan: plan } as ExplainResult)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });
});
