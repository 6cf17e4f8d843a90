import type { NodeRole } from '../errors/index.js';
import type { FingerprintSource } from './fingerprint.js';

// What SlowQueryLog takes and gives: a recorded statement, its entries, samples and options.

export interface SlowQueryInput {
  readonly sql: string;
  readonly params?: readonly unknown[];
  readonly durationMs: number;
  /** Rows returned or affected, when known. */
  readonly rows?: number | null;
  /** The node's configured name (never a connection string). */
  readonly node: string;
  readonly role: NodeRole;
  /** Epoch ms; defaults to the log's clock. */
  readonly at?: number;
}

export interface SlowQuerySample {
  readonly at: number;
  readonly durationMs: number;
  readonly rows?: number;
  readonly node: string;
  readonly role: NodeRole;
  readonly paramCount: number;
  /** Present only with `captureParams: true`, as JSON-safe, length-capped copies. */
  readonly params?: readonly unknown[];
}

/**
 * One normalized statement in the slow-query log: calls, timings, rows, the nodes that ran it and
 * recent samples.
 */
export interface SlowQueryEntry {
  readonly fingerprint: string;
  /** Normalized text: literals are `$n`, comments removed. */
  readonly query: string;
  readonly fingerprintSource: FingerprintSource;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  /** From a log-bucketed histogram: within ~4.5 % of a recorded duration. */
  readonly p95Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** Sum of the rows reported for the calls that reported them. */
  readonly rows: number;
  readonly firstSeenAt: number;
  readonly lastSeenAt: number;
  /** Calls per node name. */
  readonly nodes: Readonly<Record<string, number>>;
  /** The most recent calls, oldest first. */
  readonly samples: readonly SlowQuerySample[];
}

export interface SlowQueryRecord {
  readonly fingerprint: string;
  readonly normalized: string;
  /** Calls of this fingerprint so far, this one included. */
  readonly calls: number;
  /** True on the first call of a fingerprint the log did not hold. */
  readonly firstSeen: boolean;
}

export interface SlowQueryLogSnapshot {
  readonly captureParams: boolean;
  readonly fingerprints: number;
  readonly evictions: number;
  readonly entries: readonly SlowQueryEntry[];
}

export interface SlowQueryLogOptions {
  /** Distinct fingerprints kept; the least recently seen is evicted beyond it. Default 500. */
  readonly maxFingerprints?: number;
  /** Recent samples kept per fingerprint. Default 5. */
  readonly samplesPerFingerprint?: number;
  /** Keep parameter values in samples. Off by default (invariant 6). */
  readonly captureParams?: boolean;
  /** Normalized texts longer than this are cut. Default 4096 characters. */
  readonly maxQueryLength?: number;
  /** Statement texts whose fingerprint is cached. Default 5000. */
  readonly cacheSize?: number;
  /**
   * Bytes the entries may hold (see `bytes`); the least recently seen are evicted beyond it.
   * Default: no bound beyond `maxFingerprints`.
   */
  readonly maxBytes?: number;
  /** Clock for sample times; tests pass their own. */
  readonly now?: () => number;
}
