/** Whether a process is alive, for tests that check what the sandbox leaves behind. */

/** True while a process with this id exists (signal 0 only checks; it sends nothing). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
