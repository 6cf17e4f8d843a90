import type pg from 'pg';
import type { ResetOnRelease } from '../config/index.js';
import type { ClockTimer } from './clock.js';
import { ReportedSettings } from './reported-settings.js';
import { transactionStatus } from './transaction-status.js';

/** A connection lent out by a pool. */
export interface PooledConnection {
  readonly client: pg.Client;
  /**
   * Return to the pool. Pass an Error (or true) to destroy instead (broken or session-dirty
   * connection). Idempotent; a second call is a no-op.
   */
  release(destroy?: Error | boolean): void;
  /**
   * True when the server reported a setting changing since this lease began (ParameterStatus:
   * search_path, role via is_superuser, TimeZone...): the connection now carries session state
   * pgpulse did not see in the SQL. Such a connection is closed on release.
   */
  reportedSettingsChanged?(): boolean;
  /**
   * True when the connection waited idle in the pool before this lease (opened ahead, or
   * returned by an earlier one); false when it was opened for this very lease.
   */
  readonly reused?: boolean;
  /** True once pg reported the connection failed (an error, or the server hung up). */
  broken?(): boolean;
}

/** Why a connection left its pool (pg-pool's log wording follows from it). */
export type RemoveReason = 'idle' | 'expired' | 'expended' | 'error' | 'closed';

export type ConnState = 'connecting' | 'idle' | 'busy' | 'closing' | 'closed';

/** One physical connection and what the pool knows about it. */
export class Conn {
  state: ConnState = 'connecting';
  /** While connecting: who counts on this connect (a waiter), or null when nobody does. */
  owner: unknown = null;
  expiresAt = Number.POSITIVE_INFINITY;
  idleSince = 0;
  /** Set once it first waits idle: a lease of it then may find its server gone. */
  wasIdle = false;
  generation = 0;
  broken = false;
  /** Set by end(): a connect that completes anyway is closed at once. */
  aborted = false;
  readonly settings: ReportedSettings;
  /** Checkouts served, for maxUses. */
  uses = 0;
  /** The pending lifetime timer (idle timeouts are one sweep per pool: connections.ts). */
  lifeTimer: ClockTimer | null = null;

  constructor(
    readonly client: pg.Client,
    readonly startedAt: number,
  ) {
    this.settings = new ReportedSettings(client);
  }
}

export type ReleaseFn = (conn: Conn, destroy: Error | boolean | undefined) => void;

export class Lease implements PooledConnection {
  readonly client: pg.Client;
  readonly reused: boolean;
  #conn: Conn | null;
  readonly #done: ReleaseFn;

  constructor(conn: Conn, done: ReleaseFn) {
    this.client = conn.client;
    this.#conn = conn;
    this.#done = done;
    conn.settings.lease();
    this.reused = conn.wasIdle;
    conn.uses++;
    // A connection in use keeps the process alive; an idle one may not (see exitOnIdle).
    refSocket(conn.client, true);
  }

  reportedSettingsChanged(): boolean {
    return this.#conn?.settings.changed() === true;
  }

  broken(): boolean {
    return this.#conn?.broken === true;
  }

  release(destroy?: Error | boolean): void {
    const conn = this.#conn;
    if (conn === null) return;
    this.#conn = null;
    this.#done(conn, destroy);
  }
}

export const RESET_SQL: Readonly<Record<ResetOnRelease, string | null>> = {
  none: null,
  // Neither needs a writable server: each runs on a hot standby too.
  objects:
    'CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES',
  all: 'DISCARD ALL',
};

/** pg's client-side record of the statements it prepared on this connection. */
interface PgStatementCache {
  parsedStatements?: Record<string, string>;
}

/**
 * DISCARD ALL deallocates every prepared statement, but pg still believes its named
 * statements exist and would send only Bind for them ("prepared statement does not exist").
 */
export function forgetPreparedStatements(client: pg.Client): void {
  const connection = client.connection as unknown as PgStatementCache;
  if (connection.parsedStatements !== undefined) connection.parsedStatements = {};
}

/** pg keeps these off its public types; read-only peeks, never written. */
interface PgClientInternals {
  readonly _ending?: boolean;
}

/** A connection left inside a transaction (or mid-end) must not be handed to the next caller. */
export function isSessionDirty(client: pg.Client): boolean {
  return (
    transactionStatus(client) !== 'I' || (client as unknown as PgClientInternals)._ending === true
  );
}

/**
 * pg.Client#connect in its callback form: code that wraps or patches connect (APMs, tests)
 * often handles only that form, and the callback form works with every pg 8.
 */
export function connectClient(client: pg.Client): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    client.connect((err?: Error) => (err ? reject(err) : resolve()));
  });
}

/** pg's socket, if `client` has one (a look-alike pool.Client may not). */
function streamOf(client: pg.Client): PgStream | undefined {
  return (client as { connection?: { stream?: PgStream } }).connection?.stream;
}

interface PgStream {
  ref?: () => void;
  unref?: () => void;
  destroy?: () => void;
}

export function refSocket(client: pg.Client, ref: boolean): void {
  const stream = streamOf(client);
  if (ref) stream?.ref?.();
  else stream?.unref?.();
}

export function destroySocket(client: pg.Client): void {
  const stream = streamOf(client);
  if (stream?.destroy) {
    stream.destroy();
    return;
  }
  // A look-alike without pg's socket: its own end(), whose failure nobody waits for.
  const end = (client as { end?: () => unknown }).end;
  if (typeof end !== 'function') return;
  try {
    Promise.resolve(end.call(client)).catch(() => {});
  } catch {
    // Ending is best effort here; the connect has already failed.
  }
}

export function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}
