/**
 * The one connection shape pgpulse's own SQL needs (analysis, advisors, partitioning): a
 * pg.Client, a pg.PoolClient, a pg.Pool or `cluster.pool` fits it.
 */
export interface QueryClient {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** A connection held for a job on one node, handed back with release(). */
export interface ConnectionLease {
  readonly client: QueryClient;
  /** `destroy` is true after a failure: the session may hold state and must not be reused. */
  release(destroy?: boolean): void;
}
