/**
 * Approximate heap bytes of a result, for the LRU's byte bound. It counts what V8 holds for
 * the common shapes (strings at 2 bytes a character plus a header, numbers, row objects and
 * arrays with a slot per field), so the bound holds within a small factor, not to the byte.
 */
const OBJECT = 56;
const SLOT = 16;

export function estimateBytes(value: unknown, depth = 0): number {
  switch (typeof value) {
    case 'string':
      return 24 + value.length * 2;
    case 'number':
    case 'boolean':
    case 'undefined':
      return 8;
    case 'bigint':
      return 24;
    case 'object': {
      if (value === null) return 8;
      if (depth > 8) return OBJECT;
      if (value instanceof Date) return OBJECT;
      if (ArrayBuffer.isView(value)) return OBJECT + value.byteLength;
      if (Array.isArray(value)) {
        let total = OBJECT;
        for (const item of value) total += SLOT + estimateBytes(item, depth + 1);
        return total;
      }
      let total = OBJECT;
      for (const key in value) {
        total += SLOT + estimateBytes((value as Record<string, unknown>)[key], depth + 1);
      }
      return total;
    }
    default:
      return SLOT;
  }
}
