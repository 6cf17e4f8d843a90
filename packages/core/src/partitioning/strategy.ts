import { z } from 'zod';
import { fallbackPhrase, oneOf, toConfigIssues } from '../config/index.js';
import { ConfigError, type ConfigIssue } from '../errors/index.js';

/**
 * A partition strategy: what the user writes, and `parsePartitionStrategy`, which validates it
 * with zod and applies the defaults. Every problem becomes a ConfigIssue naming the dotted field
 * (`partitioning.interval`) and what it must be, all reported at once.
 */

export const PARTITION_TYPES = ['range', 'list', 'hash'] as const;
export type PartitionType = (typeof PARTITION_TYPES)[number];

export const PARTITION_INTERVALS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export type PartitionInterval = (typeof PARTITION_INTERVALS)[number];

export const RETENTION_UNITS = ['hours', 'days', 'months'] as const;
export type RetentionUnit = (typeof RETENTION_UNITS)[number];

export const RETENTION_MODES = ['drop', 'detach'] as const;
export type RetentionMode = (typeof RETENTION_MODES)[number];

export interface PartitionRetention {
  /** Partitions whose upper bound is at or before `now - olderThan` are retired. */
  readonly olderThan: number;
  readonly unit: RetentionUnit;
}

/** A strategy as written by the user. */
export interface PartitionStrategy {
  /** The partitioned parent (it must exist, created with `PARTITION BY ...`). */
  readonly table: string;
  /** Default 'public'. */
  readonly schema?: string | undefined;
  /** The partition key column. */
  readonly column: string;
  readonly type: PartitionType;
  /** Range only, required there: the width of one partition, on a timestamptz/timestamp/date key. */
  readonly interval?: PartitionInterval | undefined;
  /** Range only: partitions kept ready after the current one. Default 4. */
  readonly premake?: number | undefined;
  /** Range only: retire partitions entirely older than this. Default: keep everything. */
  readonly retention?: PartitionRetention | undefined;
  /** Range only: drop retired partitions, or only detach them (kept as plain tables). Default 'drop'. */
  readonly retentionMode?: RetentionMode | undefined;
  /** List only, required there: the values of each partition, one array per partition. */
  readonly listValues?: readonly (readonly string[])[] | undefined;
  /** Hash only, required there: the number of hash partitions. */
  readonly modulus?: number | undefined;
  /** Create a DEFAULT partition (range and list). Default false. */
  readonly default?: boolean | undefined;
}

interface ResolvedBase {
  readonly schema: string;
  readonly table: string;
  readonly column: string;
  readonly default: boolean;
}

export interface ResolvedRangeStrategy extends ResolvedBase {
  readonly type: 'range';
  readonly interval: PartitionInterval;
  readonly premake: number;
  readonly retention: PartitionRetention | undefined;
  readonly retentionMode: RetentionMode;
}

export interface ResolvedListStrategy extends ResolvedBase {
  readonly type: 'list';
  readonly listValues: readonly (readonly string[])[];
}

export interface ResolvedHashStrategy extends ResolvedBase {
  readonly type: 'hash';
  readonly modulus: number;
  readonly default: false;
}

/** A validated strategy with every default applied. */
export type ResolvedPartitionStrategy =
  | ResolvedRangeStrategy
  | ResolvedListStrategy
  | ResolvedHashStrategy;

export const DEFAULT_PREMAKE = 4;
/** Sanity bounds: beyond them a typo (premake 10000 hourly partitions) is likelier than intent. */
export const MAX_PREMAKE = 1000;
export const MAX_MODULUS = 1024;
export const MAX_LIST_PARTITIONS = 1000;

const IDENTIFIER = 'a PostgreSQL identifier (1 to 63 bytes, no NUL character)';
const identifier = () =>
  z
    .string(IDENTIFIER)
    .min(1, IDENTIFIER)
    .refine((s) => Buffer.byteLength(s) <= 63 && !s.includes('\0'), IDENTIFIER);
const intIn = (min: number, max: number) => {
  const phrase = `an integer from ${min} to ${max}`;
  return z.number(phrase).int(phrase).min(min, phrase).max(max, phrase);
};
const posInt = () => z.number('an integer >= 1').int('an integer >= 1').min(1, 'an integer >= 1');
const choice = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, oneOf(values));
const LIST_VALUE = 'a string without NUL characters';

const schema = z.strictObject(
  {
    table: identifier(),
    schema: identifier().optional(),
    column: identifier(),
    type: choice(PARTITION_TYPES),
    interval: choice(PARTITION_INTERVALS).optional(),
    premake: intIn(0, MAX_PREMAKE).optional(),
    retention: z
      .strictObject(
        { olderThan: posInt(), unit: choice(RETENTION_UNITS) },
        "an object { olderThan, unit: 'hours' | 'days' | 'months' }",
      )
      .optional(),
    retentionMode: choice(RETENTION_MODES).optional(),
    listValues: z
      .array(
        z
          .array(
            z.string(LIST_VALUE).refine((s) => !s.includes('\0'), LIST_VALUE),
            'an array',
          )
          .min(1, 'a non-empty array of values'),
        'an array of arrays of strings (one array per partition)',
      )
      .min(1, 'a non-empty array of arrays of strings')
      .max(MAX_LIST_PARTITIONS, `at most ${MAX_LIST_PARTITIONS} partitions`)
      .optional(),
    modulus: intIn(1, MAX_MODULUS).optional(),
    default: z.boolean('true or false').optional(),
  },
  'a partition strategy { table, column, type, ... }',
);

type Parsed = z.output<typeof schema>;

/**
 * Validate one strategy and apply its defaults. Throws ConfigError listing every bad field,
 * each as `<field>.<key>` (`partitioning.interval` by default).
 */
export function parsePartitionStrategy(
  input: unknown,
  field = 'partitioning',
): ResolvedPartitionStrategy {
  const result = checkStrategy(input, field);
  if (!result.ok) throw new ConfigError(result.issues);
  return result.strategy;
}

/**
 * Validate a list of strategies (`partitioning.<n>.<key>`); a table named twice is an error.
 */
export function parsePartitionStrategies(
  input: unknown,
  field = 'partitioning',
): ResolvedPartitionStrategy[] {
  if (!Array.isArray(input)) {
    throw new ConfigError([{ field, message: `must be an array of partition strategies` }]);
  }
  const issues: ConfigIssue[] = [];
  const strategies: ResolvedPartitionStrategy[] = [];
  const seen = new Map<string, number>();
  input.forEach((item: unknown, index) => {
    const result = checkStrategy(item, `${field}.${index}`);
    if (!result.ok) {
      issues.push(...result.issues);
      return;
    }
    const key = JSON.stringify([result.strategy.schema, result.strategy.table]);
    const first = seen.get(key);
    if (first !== undefined) {
      issues.push({
        field: `${field}.${index}.table`,
        message: `the table is already managed by ${field}.${first}; give each table one strategy`,
      });
    } else {
      seen.set(key, index);
    }
    strategies.push(result.strategy);
  });
  if (issues.length > 0) throw new ConfigError(issues);
  return strategies;
}

type CheckResult =
  | { readonly ok: true; readonly strategy: ResolvedPartitionStrategy }
  | { readonly ok: false; readonly issues: ConfigIssue[] };

function checkStrategy(input: unknown, field: string): CheckResult {
  const result = schema.safeParse(input, { reportInput: true, error: fallbackPhrase });
  if (!result.success) {
    // config's formatter (dotted fields, phrases, no secrets), with this input's own unknown-key
    // message: the keys a strategy takes.
    const issues = toConfigIssues(result.error.issues, [field], { unknownKeys });
    return { ok: false, issues };
  }
  const issues = crossFieldIssues(result.data, field);
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, strategy: resolve(result.data) };
}

function crossFieldIssues(s: Parsed, field: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const only = (key: keyof Parsed, type: PartitionType) => {
    if (s[key] !== undefined && s.type !== type) {
      issues.push({
        field: `${field}.${key}`,
        message: `applies to ${type} partitioning only; remove it from this ${s.type} strategy`,
      });
    }
  };
  only('interval', 'range');
  only('premake', 'range');
  only('retention', 'range');
  only('retentionMode', 'range');
  only('listValues', 'list');
  only('modulus', 'hash');
  if (s.type === 'range' && s.interval === undefined) {
    issues.push({
      field: `${field}.interval`,
      message: `required for range partitioning — ${oneOf(PARTITION_INTERVALS)}`,
    });
  }
  if (s.type === 'list' && s.listValues === undefined) {
    issues.push({
      field: `${field}.listValues`,
      message:
        "required for list partitioning — one array of values per partition, e.g. [['us', 'ca'], ['eu']]",
    });
  }
  if (s.type === 'hash' && s.modulus === undefined) {
    issues.push({
      field: `${field}.modulus`,
      message: `required for hash partitioning — the number of partitions, 1 to ${MAX_MODULUS}`,
    });
  }
  if (s.type === 'hash' && s.default === true) {
    issues.push({
      field: `${field}.default`,
      message: 'a hash-partitioned table cannot have a DEFAULT partition; remove it',
    });
  }
  if (s.listValues !== undefined) {
    const owner = new Map<string, number>();
    s.listValues.forEach((values, i) => {
      values.forEach((value, j) => {
        const first = owner.get(value);
        if (first === undefined) owner.set(value, i);
        else {
          issues.push({
            field: `${field}.listValues.${i}.${j}`,
            message: `${JSON.stringify(value)} is already listed in ${field}.listValues.${first}; a value belongs to one partition`,
          });
        }
      });
    });
  }
  return issues;
}

function resolve(s: Parsed): ResolvedPartitionStrategy {
  const base = { schema: s.schema ?? 'public', table: s.table, column: s.column };
  switch (s.type) {
    case 'range':
      return {
        ...base,
        type: 'range',
        // crossFieldIssues guarantees it; the fallback only satisfies the type checker.
        interval: s.interval ?? 'daily',
        premake: s.premake ?? DEFAULT_PREMAKE,
        retention: s.retention,
        retentionMode: s.retentionMode ?? 'drop',
        default: s.default ?? false,
      };
    case 'list':
      return {
        ...base,
        type: 'list',
        listValues: (s.listValues ?? []).map((values) => [...values]),
        default: s.default ?? false,
      };
    case 'hash':
      return { ...base, type: 'hash', modulus: s.modulus ?? 1, default: false };
  }
}

function unknownKeys(field: string, keys: readonly string[]): ConfigIssue {
  return {
    field,
    message: `unknown option(s) ${keys.map((k) => `'${k}'`).join(', ')} (expected: table, schema, column, type, interval, premake, retention, retentionMode, listValues, modulus, default)`,
  };
}
