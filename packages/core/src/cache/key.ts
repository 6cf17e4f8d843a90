/**
 * The key of a read: everything that shapes its rows. Text and parameters; the database and
 * role the connections use (`search_path` follows from them: a statement outside a transaction
 * runs on a pooled connection whose session settings pgpulse never lets change, see invariant
 * 2); the row mode, which changes the rows' shape.
 */
/**
 * pg's per-query `types` (type parsers) shape the rows, and a function cannot be keyed. A
 * `types` object that carries this symbol with a string declares its parsers a fixed function
 * of that string: such a read may be cached, under a key that includes it (two parser sets
 * never share an entry). The ORM adapters set it for their driver's parsers; without it, a read
 * with `types` is not cached. `Symbol.for`, so two copies of @pgpulse/core agree.
 */
export const CACHE_TYPES_ID: unique symbol = Symbol.for('pgpulse.cache.typesId');

/** The parser set's declared name, or undefined when `types` carries none. */
export function typesCacheId(types: unknown): string | undefined {
  if (types === null || typeof types !== 'object') return undefined;
  const id: unknown = (types as { [CACHE_TYPES_ID]?: unknown })[CACHE_TYPES_ID];
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

export function cacheKey(
  prefix: string,
  text: string,
  values: readonly unknown[] | undefined,
  rowMode: string | undefined,
): string {
  const params = values === undefined || values.length === 0 ? '' : serialize(values);
  return `${prefix}\u0000${rowMode ?? ''}\u0000${text}\u0000${params}`;
}

/** Tagged by type: pg sends a Date and the string it would print the same way, but not always. */
function serialize(values: readonly unknown[]): string {
  return JSON.stringify(values.map(tag));
}

function tag(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      return `s${value}`;
    case 'number':
      return `d${value}`;
    case 'boolean':
      return value ? 'T' : 'F';
    case 'bigint':
      return `n${value}`;
    default:
      break;
  }
  if (value instanceof Date) return `t${value.getTime()}`;
  if (Buffer.isBuffer(value)) return `b${value.toString('hex')}`;
  if (Array.isArray(value)) return value.map(tag);
  return `j${JSON.stringify(value)}`;
}
