/**
 * `db.query.summary` and `db.operation.name` for a statement: the operation and its first
 * table, e.g. "SELECT orders". Low cardinality by design (it names spans and labels metrics),
 * best effort, cached by text (the head of a long one).
 */
export interface QuerySummary {
  readonly operation: string;
  readonly summary: string;
}

const CACHE_LIMIT = 2000;
const cache = new Map<string, QuerySummary>();

const IDENT = String.raw`((?:"[^"]+"|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:"[^"]+"|[A-Za-z_][\w$]*))?)`;
const TABLE_PATTERNS: Readonly<Record<string, RegExp>> = {
  SELECT: new RegExp(String.raw`\bFROM\s+(?:ONLY\s+)?${IDENT}`, 'i'),
  INSERT: new RegExp(String.raw`\bINTO\s+${IDENT}`, 'i'),
  UPDATE: new RegExp(String.raw`^\s*UPDATE\s+(?:ONLY\s+)?${IDENT}`, 'i'),
  DELETE: new RegExp(String.raw`\bFROM\s+(?:ONLY\s+)?${IDENT}`, 'i'),
  MERGE: new RegExp(String.raw`\bINTO\s+${IDENT}`, 'i'),
};

/**
 * Only the head of a long text is read (its operation and first table are there, or the
 * summary is just the operation): a bulk statement costs the same as a short one.
 */
const HEAD_LENGTH = 4096;

export function summarize(full: string): QuerySummary {
  const text = full.length > HEAD_LENGTH ? full.slice(0, HEAD_LENGTH) : full;
  const hit = cache.get(text);
  if (hit) return hit;
  const stripped = text.replace(/\/\*[\s\S]*?\*\/|--[^\n]*/g, ' ').trimStart();
  const operation = (/^[A-Za-z]+/.exec(stripped)?.[0] ?? 'UNKNOWN').toUpperCase();
  const table = TABLE_PATTERNS[operation]?.exec(stripped)?.[1]?.replace(/\s+/g, '');
  const result = { operation, summary: table ? `${operation} ${table}` : operation };
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(text, result);
  return result;
}
