// The values of the enumerated options users write (and the resolved config carries).

/**
 * When a checked-out client's connection returns to the pool: 'transaction' (the default) and
 * 'statement' after each statement or transaction (the two behave alike), 'session' only at
 * release(), so the client keeps one connection for its whole checkout.
 */
export type PoolingMode = 'transaction' | 'session' | 'statement';
/**
 * What a connection is cleared of when it returns to the pool, beyond what pgpulse already
 * does (settings the server reports changed, a transaction left open, session state seen in
 * the SQL: the connection is closed instead of reused).
 * - 'none': nothing more (default; no extra round trip).
 * - 'objects': what the server does not report and a function may leave behind: temporary
 *   tables, session advisory locks, open cursors, LISTEN channels, sequence state
 *   (`CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES`);
 *   settings and prepared statements are kept. One round trip per release.
 * - 'all': `DISCARD ALL` (also settings, including a 'connect' hook's, and prepared
 *   statements). One round trip per release.
 */
export type ResetOnRelease = 'none' | 'objects' | 'all';
/**
 * What a read does when no replica is within the lag limit: 'fallback' to the primary, the
 * 'least-lagged' replica, or an 'error'.
 */
export type LagPolicy = 'fallback' | 'least-lagged' | 'error';
/**
 * How fresh a read must be: 'eventual' (any healthy replica within the lag limit),
 * 'read-your-writes' (a replica that replayed the context's writes), 'strong' (the primary).
 */
export type ConsistencyLevel = 'eventual' | 'read-your-writes' | 'strong';
export type ConsistencyMode = 'lsn' | 'time-window';
/**
 * Who promotes a standby when the primary is lost: an 'external' HA manager (pgpulse follows),
 * pgpulse itself ('automatic'), pgpulse after an approval ('semi-automatic'), or a call to
 * failover() ('manual').
 */
export type PromotionStrategy = 'external' | 'automatic' | 'semi-automatic' | 'manual';
