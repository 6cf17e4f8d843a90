import type { z } from 'zod';
import type { ConfigIssue } from '../errors/index.js';
import { redactUrl } from './node-url.js';

/**
 * Validation is zod; messages are ours. Every schema carries a short phrase saying what the
 * field must be ("a positive number"); `toConfigIssues` turns a zod issue into
 * `must be <phrase> (got <value>)` or `required — <phrase>`, with the dotted path as the field.
 * Issues whose message is already complete (URL and regex errors, cross-field checks) are
 * marked with FINAL and passed through.
 */
export const FINAL = { pgpulseFinal: true } as const;

/** `one of 'a' | 'b'`: the phrase of an enum. */
export const oneOf = (values: readonly string[]): string =>
  `one of ${values.map((v) => `'${v}'`).join(' | ')}`;

export type ZodIssue = z.core.$ZodIssue;
type Path = readonly PropertyKey[];

/** How one kind of input names its options in unknown-key messages. */
export interface IssueOptions {
  /** Keys of every strict object, by path pattern (`replicas.*`), for "did you mean". */
  readonly knownKeys?: ReadonlyMap<string, readonly string[]>;
  /** One issue for the unknown keys of an object at `field`, instead of one per key. */
  readonly unknownKeys?: (field: string, keys: readonly string[]) => ConfigIssue;
}

export function toConfigIssues(
  issues: readonly ZodIssue[],
  prefix: Path,
  options: IssueOptions = {},
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys':
        if (options.unknownKeys !== undefined) {
          out.push(options.unknownKeys(dotted(path), issue.keys));
          break;
        }
        for (const key of issue.keys) {
          out.push({
            field: dotted([...path, key]),
            message: unknownKeyMessage(path, key, options.knownKeys ?? new Map()),
          });
        }
        break;
      case 'invalid_union': {
        // A string goes down the URL branch and an object down the object branch; report the
        // branch the user meant, not "matched neither".
        const meant = issue.errors.filter((branch) => !isRootTypeMismatch(branch));
        const only = meant.length === 1 ? meant[0] : undefined;
        if (only !== undefined) out.push(...toConfigIssues(only, path, options));
        else out.push(phraseIssue(path, issue));
        break;
      }
      default:
        if (issue.code === 'custom' && issue.params?.pgpulseFinal === true) {
          out.push({ field: dotted(path), message: issue.message });
        } else {
          out.push(phraseIssue(path, issue));
        }
    }
  }
  return out;
}

function isRootTypeMismatch(branch: readonly ZodIssue[]): boolean {
  return branch.length === 1 && branch[0]?.code === 'invalid_type' && branch[0].path.length === 0;
}

function phraseIssue(path: Path, issue: ZodIssue): ConfigIssue {
  const field = dotted(path);
  const input = issue.input;
  if (input === undefined && path.length > 0)
    return { field, message: `required — ${issue.message}` };
  let message = `must be ${issue.message} (got ${show(input, path)})`;
  if (issue.code === 'invalid_value' && typeof input === 'string') {
    const close = suggest(
      input,
      issue.values.filter((v): v is string => typeof v === 'string'),
    );
    if (close !== undefined) message += `; did you mean '${close}'?`;
  }
  return { field, message };
}

/** Backstop for any check that has no phrase of its own (zod's `error` option). */
export function fallbackPhrase(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return `a value of type ${issue.expected}`;
    case 'too_small':
      return `${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}`;
    case 'too_big':
      return `${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}`;
    case 'invalid_value':
      return oneOf(issue.values.map(String));
    default:
      return undefined;
  }
}

function unknownKeyMessage(
  path: Path,
  key: string,
  knownKeys: ReadonlyMap<string, readonly string[]>,
): string {
  const pattern = path
    .map((segment) => (typeof segment === 'number' ? '*' : String(segment)))
    .join('.');
  if (pattern === 'primary' && key === 'weight') {
    return 'unknown option; weight applies to replicas only (the primary takes reads only as a fallback)';
  }
  const known = knownKeys.get(pattern) ?? [];
  const close = suggest(key, known);
  if (close !== undefined) return `unknown option; did you mean ${close}?`;
  // Right name, wrong place, e.g. `maxLagMs` at the top level instead of under `replicaLag`.
  for (const [otherPattern, keys] of knownKeys) {
    if (otherPattern === pattern || otherPattern === '') continue;
    const hit = keys.find((k) => k.toLowerCase() === key.toLowerCase());
    if (hit !== undefined) {
      return `unknown option here; did you mean ${otherPattern.replace('*', '<n>')}.${hit}?`;
    }
  }
  return known.length > 0
    ? `unknown option (expected one of: ${known.join(', ')})`
    : 'unknown option';
}

/** The closest candidate by edit distance, if close enough to be a typo. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const budget = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= budget ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

const SENSITIVE_SEGMENT = /^(password|ssl)$/i;

/** A value as it may appear in an error message: never a password, never TLS material. */
function show(value: unknown, path: Path): string {
  if (path.some((segment) => typeof segment === 'string' && SENSITIVE_SEGMENT.test(segment))) {
    return describeType(value);
  }
  switch (typeof value) {
    case 'string':
      return quote(redactUrl(value));
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    default:
      return describeType(value);
  }
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof RegExp) return 'a RegExp';
  const type = typeof value;
  return type === 'undefined' ? 'undefined' : `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

export function quote(text: string): string {
  const short = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return `'${short}'`;
}

function dotted(path: Path): string {
  return path.map(String).join('.');
}
