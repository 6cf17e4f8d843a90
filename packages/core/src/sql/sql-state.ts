// The one reading of a driver error's `code` (issue #10: it was written four times).

/**
 * The `code` a driver error carries, as pg gives it: the server's SQLSTATE ('55P03') or, when
 * the connection itself failed, Node's code ('ECONNREFUSED'); undefined when there is none.
 */
export function errorCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? Reflect.get(error, 'code') : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** The server's SQLSTATE only (five digits or capitals); undefined for Node's codes. */
export function sqlStateOf(error: unknown): string | undefined {
  const code = errorCode(error);
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
