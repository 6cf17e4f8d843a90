import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../errors/index.js';
import { PartitionManager } from './partition-manager.js';
import { parsePartitionStrategy } from './strategy.js';

function issuesOf(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

const range = { table: 'market_data', column: 'ts', type: 'range', interval: 'daily' } as const;
const noConnection = () => Promise.reject(new Error('no database in this test'));

describe('parsePartitionStrategy', () => {
  it('applies the defaults', () => {
    expect(parsePartitionStrategy(range)).toEqual({
      schema: 'public',
      table: 'market_data',
      column: 'ts',
      type: 'range',
      interval: 'daily',
      premake: 4,
      retention: undefined,
      retentionMode: 'drop',
      default: false,
    });
    expect(
      parsePartitionStrategy({ table: 't', column: 'id', type: 'hash', modulus: 8 }),
    ).toMatchObject({ type: 'hash', modulus: 8, default: false });
  });

  it('names the field of a bad interval', () => {
    const issues = issuesOf(() => parsePartitionStrategy({ ...range, interval: 'minutely' }));
    expect(issues).toEqual([
      {
        field: 'partitioning.interval',
        message:
          "must be one of 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly' (got 'minutely')",
      },
    ]);
  });

  it('requires what each type needs and rejects what it cannot use', () => {
    expect(
      issuesOf(() => parsePartitionStrategy({ table: 't', column: 'ts', type: 'range' })),
    ).toEqual([
      {
        field: 'partitioning.interval',
        message:
          "required for range partitioning — one of 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly'",
      },
    ]);
    expect(
      issuesOf(() =>
        parsePartitionStrategy({
          table: 't',
          column: 'id',
          type: 'hash',
          modulus: 4,
          default: true,
          premake: 2,
        }),
      ).map((i) => i.field),
    ).toEqual(['partitioning.premake', 'partitioning.default']);
    expect(
      issuesOf(() =>
        parsePartitionStrategy({
          table: 't',
          column: 'r',
          type: 'list',
          listValues: [['a'], ['b', 'a']],
        }),
      ),
    ).toEqual([
      {
        field: 'partitioning.listValues.1.1',
        message:
          '"a" is already listed in partitioning.listValues.0; a value belongs to one partition',
      },
    ]);
  });

  it('checks numbers, identifiers and unknown keys', () => {
    const issues = issuesOf(() =>
      parsePartitionStrategy({
        ...range,
        table: 'x'.repeat(64),
        premake: -1,
        retention: { olderThan: 0, unit: 'weeks' },
        retentionMode: 'truncate',
        colour: 'blue',
      }),
    );
    expect(issues.map((i) => i.field).sort()).toEqual([
      'partitioning',
      'partitioning.premake',
      'partitioning.retention.olderThan',
      'partitioning.retention.unit',
      'partitioning.retentionMode',
      'partitioning.table',
    ]);
    expect(issues.find((i) => i.field === 'partitioning')?.message).toMatch(
      /unknown option\(s\) 'colour'/,
    );
    expect(issuesOf(() => parsePartitionStrategy(undefined))[0]?.field).toBe('partitioning');
  });

  it('validates the manager strategies and options at construction', () => {
    // Untyped input, as from a JSON or YAML configuration file.
    const fromFile = JSON.parse(
      JSON.stringify([range, { ...range, interval: 'fortnightly' }, range]),
    );
    const issues = issuesOf(
      () => new PartitionManager(noConnection, fromFile, { lockTimeoutMs: 0 }),
    );
    expect(issues.map((i) => i.field)).toEqual([
      'partitioning.1.interval',
      'partitioning.2.table',
      'partitionManager.lockTimeoutMs',
    ]);
  });
});
