import { type ChildProcess, spawn } from 'node:child_process';

/** Something that can stop its servers synchronously when the process is going away. */
export interface Disposable {
  disposeSync(): void;
}

const live = new Set<Disposable>();
let hooked = false;

/**
 * Registers a cluster so its servers die with this process: on normal exit, on SIGINT/SIGTERM/
 * SIGHUP, and on an uncaught crash. A SIGKILL gives no chance to run code, which is what the
 * per-cluster watchdog is for.
 */
export function track(item: Disposable): void {
  live.add(item);
  if (hooked) return;
  hooked = true;
  process.on('exit', disposeAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      disposeAll();
      process.removeListener(signal, onSignal);
      // Only restore the default behaviour (exit) when nobody else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

export function untrack(item: Disposable): void {
  live.delete(item);
}

function disposeAll(): void {
  for (const item of live) {
    try {
      item.disposeSync();
    } catch {
      // Best effort: the watchdog finishes the job.
    }
  }
  live.clear();
}

const WATCHDOG = `
parent="$1"; dir="$2"
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
for f in "$dir"/*/postmaster.pid; do [ -f "$f" ] && kill -QUIT "$(head -n 1 "$f")" 2>/dev/null; done
sleep 3
for f in "$dir"/*/postmaster.pid; do [ -f "$f" ] && kill -KILL "$(head -n 1 "$f")" 2>/dev/null; done
rm -rf "$dir"
`;

/**
 * A detached shell that outlives us: when this process disappears (even by SIGKILL), it stops
 * the cluster's servers and deletes its folder. stop() kills it on the normal path.
 */
export function startWatchdog(clusterDir: string): ChildProcess {
  const child = spawn(
    'sh',
    ['-c', WATCHDOG, 'pgpulse-sandbox-watchdog', String(process.pid), clusterDir],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  child.unref();
  return child;
}
