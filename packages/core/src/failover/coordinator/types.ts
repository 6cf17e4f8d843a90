/**
 * What the failover manager needs from a coordination service (etcd, or any other that can
 * hold a lease): mutual exclusion of the promotion decision across app instances, and a record
 * of the last promotion that outlives the lease, so an instance that cannot see the new primary
 * does not promote another.
 */

/** The last promotion a lease holder made, as stored by the coordinator. */
export interface PromotionRecord {
  /** identityKey() of the promoted node: the same string on every instance. */
  readonly node: string;
  /** The timeline the node was on once writable. */
  readonly timeline: number;
  /** The instance that promoted it (the coordinator's holder id). */
  readonly by: string;
  /** ISO time of the promotion. */
  readonly at: string;
}

/** Held by one instance at a time; expires on its own when the holder dies (a TTL). */
export interface PromotionLease {
  /** The last recorded promotion of this cluster, or undefined when none was. */
  recorded(): Promise<PromotionRecord | undefined>;
  /** Stores `record`, only while this lease is still held (else it rejects). */
  record(record: Omit<PromotionRecord, 'by' | 'at'>): Promise<void>;
  /** Gives the lease up at once (it would expire on its own). Never rejects. */
  release(): Promise<void>;
}

/**
 * A coordination service (etcd) that makes the promotion decision exclusive across app instances
 * and records the last promotion.
 */
export interface FailoverCoordinator {
  /** Who this instance is in the coordinator's records. */
  readonly holderId: string;
  /**
   * Tries to take the promotion lease of `cluster` (a key every instance derives alike, e.g. the
   * system identifier). Undefined when another instance holds it. Rejects with
   * CoordinatorUnavailableError when the service cannot be reached in time: no lease, no
   * promotion.
   */
  acquire(cluster: string): Promise<PromotionLease | undefined>;
  /**
   * Loads the client and opens its connection ahead of the first failover, so that a promotion
   * does not pay for them (20 instances importing etcd3 at once on 2 cores took 3 s). Never
   * rejects: an unreachable service is reported by acquire(), where it matters.
   */
  prepare(): Promise<void>;
  close(): Promise<void>;
}
