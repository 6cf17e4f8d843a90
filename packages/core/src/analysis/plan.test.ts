import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PgPulseError } from '../errors/index.js';
import { flattenPlan, type PlanNode, parseExplainJson, walkPlan } from './plan.js';

function fixtureRows(name: string): unknown {
  const text = readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8');
  return (JSON.parse(text) as { rows: unknown }).rows;
}

describe('parseExplainJson', () => {
  const rows = fixtureRows('disk-hash');

  it('reads the rows pg returns', () => {
    const result = parseExplainJson(rows);
    expect(result.Plan['Node Type']).toBe('Hash Join');
    expect(result['Execution Time']).toBeGreaterThan(0);
  });

  it('reads JSON text (json type parser overridden), the inner array and a bare object', () => {
    const inner = (rows as [{ 'QUERY PLAN': unknown[] }])[0]['QUERY PLAN'];
    const text = [{ 'QUERY PLAN': JSON.stringify(inner) }];
    expect(parseExplainJson(text).Plan['Node Type']).toBe('Hash Join');
    expect(parseExplainJson(inner).Plan['Node Type']).toBe('Hash Join');
    expect(parseExplainJson(inner[0]).Plan['Node Type']).toBe('Hash Join');
    expect(parseExplainJson(JSON.stringify(inner)).Plan['Node Type']).toBe('Hash Join');
  });

  it.each([
    ['no rows', []],
    ['a row without a plan', [{ 'QUERY PLAN': [{}] }]],
    ['a plan without a node type', [{ 'QUERY PLAN': [{ Plan: {} }] }]],
    ['text', 'not json'],
    ['null', null],
    ['a number', 42],
  ])('rejects %s with a typed error', (_label, input) => {
    expect(() => parseExplainJson(input)).toThrow(PgPulseError);
    try {
      parseExplainJson(input);
    } catch (error) {
      expect((error as PgPulseError).code).toBe('PGPULSE_EXPLAIN_FORMAT');
    }
  });
});

describe('walkPlan', () => {
  it('visits parents before children, first child first, with paths and ancestors', () => {
    const result = parseExplainJson(fixtureRows('disk-hash'));
    const visits = flattenPlan(result);
    expect(visits.map((v) => [v.path, v.node['Node Type'], v.depth])).toEqual([
      ['$', 'Hash Join', 0],
      ['$.Plans[0]', 'Seq Scan', 1],
      ['$.Plans[1]', 'Hash', 1],
      ['$.Plans[1].Plans[0]', 'Seq Scan', 2],
    ]);
    const deepest = visits[3]!;
    expect(deepest.ancestors.map((a) => a['Node Type'])).toEqual(['Hash', 'Hash Join']);
  });

  it('accepts a bare node, skips non-object children and survives cycles', () => {
    const child: { 'Node Type': string; Plans?: unknown[] } = { 'Node Type': 'Child' };
    const root = { 'Node Type': 'Root', Plans: [child, 42, null, 'x'] };
    child.Plans = [root];
    const seen: string[] = [];
    walkPlan(root as unknown as PlanNode, (v) => seen.push(v.node['Node Type']));
    expect(seen).toEqual(['Root', 'Child']);
  });
});
