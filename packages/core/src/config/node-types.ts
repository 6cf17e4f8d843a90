import type { ConnectionOptions } from 'node:tls';
import type { ServerSettings } from './server-settings.js';

// A node as users write it: a URL or the object form.

/** TLS settings handed to `tls.connect`; `true` means "TLS with default verification". */
export type SslOption = boolean | ConnectionOptions;

/**
 * What sits between pgpulse and a node: `'none'` (a direct connection, or a session-mode
 * pooler) or `'transaction'` (a transaction-mode pooler such as PgBouncer).
 */
export type PoolerMode = 'none' | 'transaction';

/** A node given as an object instead of a URL. */
export interface NodeOptions {
  /** Host name, IP address, or a unix socket directory (starting with `/`). */
  host: string;
  /** Default 5432. */
  port?: number;
  /** Default: the user name (as libpq does). */
  database?: string;
  /** Default 'postgres'. */
  user?: string;
  /** Kept out of every object graph (logs, inspect, errors never show it). */
  password?: string;
  /** Label used in logs, metrics and errors; default 'primary', 'replica-1', 'replica-2', ... */
  name?: string;
  /** TLS: true, or tls.connect options (ca, cert, key, servername, ...); default off (URL: sslmode). */
  ssl?: SslOption;
  /**
   * Server settings for every connection to this node, sent at connect time (libpq's
   * `options`; a URL takes `?options=-c%20statement_timeout%3D5s`), over the top-level
   * `settings`. E.g. `{ statement_timeout: '5s', lock_timeout: 1000 }`.
   */
  settings?: ServerSettings;
  /**
   * libpq's `options` string for this node, e.g. `'-c statement_timeout=5s -c lock_timeout=1s'`
   * (the URL's `?options=`); parsed into settings, under this node's `settings`.
   */
  options?: string;
  /**
   * `'transaction'` when this node is reached through a transaction-mode pooler (PgBouncer
   * `pool_mode = transaction`, or the like): automatic prepared statements are off for it and
   * a statement the application named (pg's `name`) is sent unnamed (PgBouncer before 1.21
   * fails named statements with 42P05 / 26000: it does not follow them between server
   * connections; a pooler cannot be told from the server through the protocol, so declare
   * it), and a statement that changes
   * session state outside a transaction (SET without LOCAL, LISTEN, pg_advisory_lock, a temp
   * table, PREPARE, DECLARE ... WITH HOLD) is refused with SessionBehindPoolerError instead of
   * leaking to another client. Default: the top-level `pooler`, else `'none'`.
   */
  pooler?: PoolerMode;
}

export interface ReplicaOptions extends NodeOptions {
  /** Relative share of reads under `loadBalancing: 'weighted'`; default 1. */
  weight?: number;
}

/** `postgres://user:password@host:port/database?sslmode=require`, or the object form. */
export type NodeInput = string | NodeOptions;
export type ReplicaInput = string | ReplicaOptions;
