import type pg from 'pg';
import type { RouteScope } from '../context/index.js';
import type { PooledConnection } from '../pool/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { Classification } from './classification.js';
import type { QueryRequest } from './query-args.js';

// What the executor calls out to around each statement, implemented elsewhere (prepared/,
// cache/, the pool's events, a checked-out client) and given to it by the cluster's wiring.

/** How an automatic prepared statement was sent: Parse with a name, by name only, or again. */
export type PreparedUse = 'prepare' | 'by-name' | 'reprepare';

/** Automatic prepared statements, as the executor sees them (implemented in prepared/). */
export interface PreparedStatementHook {
  /**
   * Sends the statement by name when its text recurs and it may be prepared, re-preparing it
   * once if the server finds its prepared form stale; undefined when it is to be sent as is.
   */
  run(
    client: pg.Client,
    request: QueryRequest,
    cls: Classification,
    node: ClusterNode,
    event: { prepared?: PreparedUse },
  ): Promise<pg.QueryResult> | undefined;
  /** A statement succeeded on this connection: DISCARD ALL, DEALLOCATE, a new search_path. */
  executed(client: pg.Client, cls: Classification, text: string): void;
}

/**
 * The query result cache, as the executor sees it (implemented in cache/). `read` returns
 * undefined when the statement did not ask for the cache; otherwise it serves the read or runs
 * it through `run`, which reports the node it was placed on.
 */
export interface ReadCacheHook {
  read(
    request: QueryRequest,
    cls: Classification,
    scope: RouteScope | undefined,
    run: (request: QueryRequest, placed: (node: ClusterNode) => void) => Promise<pg.QueryResult>,
  ): Promise<pg.QueryResult> | undefined;
  /** A statement on a pinned connection (transaction, session state) asked for the cache. */
  pinned(request: QueryRequest): 'bypass' | undefined;
  /** A statement finished on this connection (successfully or not): invalidate what it wrote. */
  executed(cls: Classification, request: QueryRequest, client: pg.Client): void;
}

/**
 * Told when a one-off statement takes and gives back its connection (pg.Pool's 'acquire' and
 * 'release' events for pool.query).
 */
export interface LeaseListener {
  /** The statement is about to ask a node's pool for a connection (in the same tick). */
  acquiring?(): void;
  acquired(client: pg.Client): void;
  released(client: pg.Client, error: Error | undefined): void;
}

/** Takes over a one-off statement's connection (true), or lets it be released (false). */
export type Adopter = (node: ClusterNode, connection: PooledConnection) => boolean;
