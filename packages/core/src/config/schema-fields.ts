import { z } from 'zod';
import { oneOf } from './issues.js';

// zod compiles each object schema into a function (new Function) on its first parse: worth it
// for a schema parsed many times, not for a configuration parsed once per createCluster
// (#22, cold start: createCluster's CPU time 12.5 -> 5.9 ms, median of 10). The built package
// bundles its own copy of zod (scripts/bundle-core.ts), so this setting reaches no other code.
z.config({ jitless: true });

/**
 * The building blocks of the configuration schema: each field kind with the phrase its
 * messages use ("a positive number"), and `section()`, a strict object whose keys are recorded
 * for "did you mean" and for the generated configuration reference.
 */

export const PHRASE = {
  posInt: 'an integer >= 1',
  nonNegInt: 'an integer >= 0',
  positive: 'a positive number',
  posMs: 'a positive number of milliseconds',
  nonNegMs: 'a number of milliseconds >= 0',
  fraction: 'a number between 0 and 1',
  bool: 'true or false',
  port: 'an integer port between 1 and 65535',
} as const;

export const posInt = () => z.number(PHRASE.posInt).int(PHRASE.posInt).min(1, PHRASE.posInt);
export const nonNegInt = () =>
  z.number(PHRASE.nonNegInt).int(PHRASE.nonNegInt).min(0, PHRASE.nonNegInt);
export const posMs = () => z.number(PHRASE.posMs).positive(PHRASE.posMs);
export const nonNegMs = () => z.number(PHRASE.nonNegMs).min(0, PHRASE.nonNegMs);
export const fraction = () =>
  z.number(PHRASE.fraction).min(0, PHRASE.fraction).max(1, PHRASE.fraction);
export const bool = () => z.boolean(PHRASE.bool);
export const POOLER_MODES = ['none', 'transaction'] as const;
export const choice = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, oneOf(values));
export const nonEmpty = (phrase: string) => z.string(phrase).trim().min(1, phrase);

/** Keys of every strict object, by path pattern (`replicas.*`), for "did you mean". */
export const KNOWN_KEYS = new Map<string, readonly string[]>();

export function section<S extends z.ZodRawShape>(pattern: string, shape: S, phrase: string) {
  KNOWN_KEYS.set(pattern, Object.keys(shape));
  return z.strictObject(shape, phrase);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The option names the schema accepts, by path pattern (`''` is the top level, `replicas.*` a
 * replica in object form). The generated configuration reference is checked against it.
 * @internal
 */
export function acceptedOptionKeys(): ReadonlyMap<string, readonly string[]> {
  return KNOWN_KEYS;
}
