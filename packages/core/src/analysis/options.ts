import { ConfigError } from '../errors/index.js';

// The numeric options of the analysis classes (ExplainCapture, SlowQueryLog), checked when
// they are built directly rather than through the config schema.

/** `value`, or `fallback` when absent; a ConfigError naming `field` unless finite and >= min. */
export function numberOption(
  field: string,
  value: number | undefined,
  fallback: number,
  min: number,
): number {
  return checked(field, value, fallback, min, Number.isFinite, 'a number');
}

/** `value`, or `fallback` when absent; a ConfigError naming `field` unless an integer >= min. */
export function integerOption(
  field: string,
  value: number | undefined,
  fallback: number,
  min: number,
): number {
  return checked(field, value, fallback, min, Number.isInteger, 'an integer');
}

function checked(
  field: string,
  value: number | undefined,
  fallback: number,
  min: number,
  valid: (value: number) => boolean,
  what: string,
): number {
  if (value === undefined) return fallback;
  if (!valid(value) || value < min) {
    throw new ConfigError([{ field, message: `must be ${what} >= ${min} (got ${String(value)})` }]);
  }
  return value;
}
