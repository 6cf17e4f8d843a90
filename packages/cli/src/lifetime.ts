/**
 * Long-running commands (sandbox, demo, dashboard) must not outlive whoever started them. A
 * signal to `pnpm` or `npx` does not always reach this process (pnpm leaves its script's
 * children running when it is sent SIGTERM), so besides their SIGINT/SIGTERM handlers these
 * commands also stop when this process is orphaned: its parent changes (re-parented to init or
 * a subreaper).
 */
const ORPHAN_CHECK_MS = 500;

/** Calls `onOrphaned` once when the parent process goes away. Returns a function that stops watching. */
export function watchOrphaned(onOrphaned: () => void): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onOrphaned();
  }, ORPHAN_CHECK_MS);
  // The watch alone never keeps the process alive.
  timer.unref();
  return () => clearInterval(timer);
}
