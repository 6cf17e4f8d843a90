/** Something a test starts and must end: a pgpulse cluster (`close`) or a sandbox (`stop`). */
export type Closable = { close(): Promise<unknown> } | { stop(): Promise<unknown> };

/**
 * Registers one `afterEach` (pass the test runner's) that ends everything the test tracked,
 * the last tracked first (a cluster before the sandbox it runs on), and returns `track`:
 * `sandbox = track(await startCluster())`, `cluster = track(createCluster(...))`. Each is
 * ended even when an earlier one fails to; the first failure is then thrown.
 */
export function closeAfterEach(
  afterEach: (fn: () => Promise<void>) => void,
): <T extends Closable>(resource: T) => T {
  let tracked: Closable[] = [];
  afterEach(async () => {
    const resources = tracked.reverse();
    tracked = [];
    let failure: { error: unknown } | undefined;
    for (const resource of resources) {
      try {
        await ('close' in resource ? resource.close() : resource.stop());
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  });
  return (resource) => {
    tracked.push(resource);
    return resource;
  };
}
