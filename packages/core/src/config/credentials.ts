/**
 * Keeping the password out of every object graph.
 *
 * pg accepts `password` as a function and calls it at authentication time. A closure is the
 * one place a value can live that no inspection form reaches: not JSON, not `util.inspect`
 * with `showHidden` and `getters` (which `console.log('%o')` uses), not structuredClone. A
 * non-enumerable property or a getter would still be shown by one of those.
 */

/** A password as pg accepts it: a function returning the secret, holding it in its closure. */
export type PasswordSource = () => string;

/** Wraps `secret` in a closure (named so that logs show what it is, never its value). */
export function passwordSource(secret: string): PasswordSource {
  const password = () => secret;
  return password;
}

interface ClientWithPassword {
  password?: unknown;
  connectionParameters?: { password?: unknown };
}

/**
 * pg writes the string its password function returned onto the client (and its connection
 * parameters) while authenticating, where `showHidden` inspection shows it. Once the client is
 * connected (or failed) the string is no longer needed: put the closure back.
 */
export function forgetPassword(client: object, source: PasswordSource | undefined): void {
  const target = client as ClientWithPassword;
  const value = source ?? null;
  if ('password' in target) target.password = value;
  const params = target.connectionParameters;
  if (params && 'password' in params) params.password = value;
}
