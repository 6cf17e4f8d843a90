/**
 * The key of a read: everything that shapes its rows. Text and parameters; the database and
 * role the connections use (`search_path` follows from them: a statement outside a transaction
 * runs on a pooled connection whose session settings pgpulse never lets change, see invariant
 * 2); the row mode, which changes the rows' shape.
 */
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
