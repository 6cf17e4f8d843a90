import type { Classification } from './classification.js';

/**
 * A hot standby's refusal of a write, which proves the statement writes and that nothing of
 * it ran: `25006 read_only_sql_transaction` ("cannot execute INSERT in a read-only
 * transaction", also raised for nextval(), SELECT ... FOR UPDATE, NOTIFY, a plpgsql function
 * that writes), and the "... during recovery" refusals raised with other codes.
 */
export function isStandbyRefusal(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (code === '25006') return true;
  if (code !== '25000' && code !== '55000' && code !== '0A000' && code !== 'XX000') return false;
  return (
    typeof message === 'string' && /during recovery|while recovery is in progress/.test(message)
  );
}

const refusedWrites = new WeakMap<Classification, Classification>();

/** The classification a refused read is retried with: a write (read-your-writes records it). */
export function asRefusedWrite(cls: Classification): Classification {
  let write = refusedWrites.get(cls);
  if (write === undefined) {
    write = Object.freeze({
      kind: 'write',
      reason: 'volatile-function',
      functions: Object.freeze([]) as readonly string[],
      relations: Object.freeze([]) as readonly string[],
      ...(cls.session === undefined ? {} : { session: cls.session }),
    });
    refusedWrites.set(cls, write);
  }
  return write;
}
