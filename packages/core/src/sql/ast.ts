/**
 * Narrow readers for libpg-query's JSON AST. The tree is treated as untrusted `unknown`: the
 * published @pgsql/types describe it, but a guard that checks what is actually there keeps a
 * parser upgrade that renames a field from silently turning a write into a read. Every reader
 * answers "not found" for a shape it does not recognise, and callers treat that as a write.
 */

export type AstRecord = { readonly [key: string]: unknown };

export function isRecord(value: unknown): value is AstRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A wrapped node such as `{ SelectStmt: {...} }`, split into its type and body. */
export interface AstNode {
  readonly type: string;
  readonly body: AstRecord;
}

export function unwrapNode(value: unknown): AstNode | undefined {
  if (!isRecord(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const type = keys[0]!;
  const body = value[type];
  return isRecord(body) ? { type, body } : undefined;
}

export function recordField(record: AstRecord, key: string): AstRecord | undefined {
  const value = record[key];
  return isRecord(value) ? value : undefined;
}

export function arrayField(record: AstRecord, key: string): readonly unknown[] | undefined {
  const value = record[key];
  return Array.isArray(value) ? value : undefined;
}

export function stringField(record: AstRecord, key: string): string | undefined {
  const value = record[key];
  return typeof value === 'string' ? value : undefined;
}

/** `[{ String: { sval: 'pg_catalog' } }, { String: { sval: 'setval' } }]` -> parts. */
export function stringList(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || value.length === 0) return undefined;
  const parts: string[] = [];
  for (const item of value) {
    const node = unwrapNode(item);
    if (node === undefined || node.type !== 'String') return undefined;
    const sval = stringField(node.body, 'sval');
    if (sval === undefined) return undefined;
    parts.push(sval);
  }
  return parts;
}

/**
 * A RangeVar creates a session-local object when it is TEMP (`relpersistence: 't'`) or is
 * placed in `pg_temp` explicitly, which the parser leaves as a permanent-looking relation.
 */
export function isTempRangeVar(value: unknown): boolean {
  if (!isRecord(value)) return false;
  if (value.relpersistence === 't') return true;
  return isTempSchema(stringField(value, 'schemaname'));
}

/** `pg_temp` (or the backend's own `pg_temp_N`) is the session's temporary schema. */
export function isTempSchema(schema: string | undefined): boolean {
  return schema?.toLowerCase().startsWith('pg_temp') === true;
}

/**
 * Reads a boolean constant the way PostgreSQL's defGetBoolean does. Returns undefined for
 * anything that is not clearly true or false (a parameter, an expression, an odd spelling),
 * so the caller can pick the conservative side.
 */
/** The text of a string constant (`'serializable'`, or a bare word the grammar keeps as one). */
export function constantString(value: unknown): string | undefined {
  const node = unwrapNode(value);
  if (node === undefined) return undefined;
  if (node.type === 'String') return stringField(node.body, 'sval');
  if (node.type !== 'A_Const') return undefined;
  const sval = recordField(node.body, 'sval');
  return sval === undefined ? undefined : stringField(sval, 'sval');
}

export function constantBoolean(value: unknown): boolean | undefined {
  const node = unwrapNode(value);
  if (node === undefined) return undefined;
  switch (node.type) {
    case 'A_Const': {
      const boolval = recordField(node.body, 'boolval');
      if (boolval !== undefined) return boolval.boolval === true;
      const ival = recordField(node.body, 'ival');
      if (ival !== undefined) return integerBoolean(ival.ival);
      const sval = recordField(node.body, 'sval');
      if (sval !== undefined) return textBoolean(sval.sval);
      return undefined;
    }
    case 'Boolean':
      return node.body.boolval === true;
    case 'Integer':
      return integerBoolean(node.body.ival);
    case 'String':
      return textBoolean(node.body.sval);
    default:
      return undefined;
  }
}

// Protobuf JSON omits zero values, so `{ ival: {} }` is the integer 0.
function integerBoolean(ival: unknown): boolean | undefined {
  if (ival === undefined || ival === 0) return false;
  if (ival === 1) return true;
  return undefined;
}

function textBoolean(text: unknown): boolean | undefined {
  if (typeof text !== 'string') return undefined;
  switch (text.toLowerCase()) {
    case 'true':
    case 'on':
    case '1':
      return true;
    case 'false':
    case 'off':
    case '0':
      return false;
    default:
      return undefined;
  }
}
