import type pg from 'pg';
import { hasProtocolStream } from './transaction-status.js';

/**
 * The settings a server reports on one connection (ParameterStatus messages: search_path on
 * PostgreSQL 18, TimeZone, DateStyle, is_superuser, session_authorization, application_name,
 * ...), and whether a borrower changed one of them.
 *
 * pgpulse sees session changes written in SQL; this sees the ones it cannot: `set_config(...,
 * false)` or `SET ROLE` run inside a function or a `DO` block. The server says so itself, the
 * same way it reports transaction status, so a connection whose reported settings differ from
 * what it had when it was handed out is never handed to the next borrower.
 *
 * The baseline is what the connection reported until it was first leased, plus what the
 * statements already queued on it at lease time reported (a `pool.on('connect')` hook's `SET
 * TIME ZONE` is set-up, not a leak).
 */
export class ReportedSettings {
  readonly #baseline = new Map<string, string>();
  readonly #current = new Map<string, string>();
  /**
   * The names whose current value is not the baseline's, kept as messages arrive, so that the
   * check at every release is a size test rather than a walk of both maps.
   */
  readonly #differ = new Set<string>();
  /** Statements queued on the client before the current lease began. */
  #setup: ReadonlySet<unknown> = NONE;
  #leased = false;

  constructor(private readonly client: pg.Client) {
    // A look-alike pool.Client without it is refused once connected (connections.ts).
    if (!hasProtocolStream(client)) return;
    client.connection.on('parameterStatus', (message: ParameterStatus) => {
      const { parameterName: name, parameterValue: value } = message;
      if (typeof name !== 'string' || typeof value !== 'string') return;
      this.#current.set(name, value);
      if (!this.#leased || this.#setup.has(activeQuery(this.client)))
        this.#baseline.set(name, value);
      if (this.#baseline.get(name) === value) this.#differ.delete(name);
      else this.#differ.add(name);
    });
  }

  /** A borrower takes the connection: what runs from now on is theirs. */
  lease(): void {
    this.#leased = true;
    this.#setup = pendingQueries(this.client);
  }

  /** The borrower gave it back. */
  endLease(): void {
    this.#leased = false;
    this.#setup = NONE;
  }

  /** True when a reported setting's value now differs from the baseline. */
  changed(): boolean {
    return this.#differ.size > 0;
  }
}

const NONE: ReadonlySet<unknown> = new Set();

interface ParameterStatus {
  readonly parameterName?: unknown;
  readonly parameterValue?: unknown;
}

/**
 * pg's queue, read without its deprecated accessors (pg 8.20+ keeps them as `_activeQuery` and
 * `_queryQueue`; older releases as plain `activeQuery` / `queryQueue` fields).
 */
interface PgQueueInternals {
  readonly _activeQuery?: unknown;
  readonly _queryQueue?: readonly unknown[];
  readonly activeQuery?: unknown;
  readonly queryQueue?: readonly unknown[];
}

function activeQuery(client: pg.Client): unknown {
  const internals = client as unknown as PgQueueInternals;
  return '_activeQuery' in internals ? internals._activeQuery : internals.activeQuery;
}

function pendingQueries(client: pg.Client): ReadonlySet<unknown> {
  const internals = client as unknown as PgQueueInternals;
  const queue = '_queryQueue' in internals ? internals._queryQueue : internals.queryQueue;
  const active = activeQuery(client);
  const idle = active === null || active === undefined;
  // The common case, a connection with nothing queued, allocates nothing.
  if (idle && (queue === undefined || queue.length === 0)) return NONE;
  const pending = new Set<unknown>(queue ?? []);
  if (!idle) pending.add(active);
  return pending;
}
