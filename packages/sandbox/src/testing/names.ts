/** Names the test suites share, so tests do not depend on each other's leftovers. */

let serial = 0;

/**
 * A name no other call in this process, nor another test process, returns: `<tag>-<n>-<pid>`.
 * For rows and objects a test creates, so tests do not depend on each other's leftovers.
 */
export function uniqueName(tag: string): string {
  serial += 1;
  return `${tag}-${serial}-${process.pid}`;
}
