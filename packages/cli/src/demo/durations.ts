/** The demo's run lengths, apart from the run itself so the CLI can show them without loading it. */
export const DEFAULT_DURATION_S = 30;
/** Below this the fault script has no room (failover takes about a second). */
export const MIN_FAULT_DURATION_S = 6;
