import { LRUCache } from 'lru-cache';
import pg from 'pg';
import type { ResolvedPreparedStatementsConfig } from '../config/index.js';
import { transactionStatus } from '../pool/index.js';
import type {
  Classification,
  ClassificationReason,
  PreparedStatementHook,
  PreparedUse,
  QueryRequest,
} from '../routing/index.js';
import { firstWord } from '../sql/index.js';
import type { ClusterNode } from '../topology/index.js';

/** Counters of automatic preparation, for stats(). */
export interface PreparedFigures {
  /** Statements prepared (Parse sent with a name) on a connection for the first time. */
  readonly prepared: number;
  /** Statements sent by name only (no Parse): the server skipped parse and plan. */
  readonly executedByName: number;
  /**
   * Statements whose prepared form went stale (0A000 "cached plan must not change result type",
   * 26000 gone, 42P05 left behind) and were prepared again and retried, unseen by the caller.
   */
  readonly reprepared: number;
  /** Prepared statements deallocated: evicted beyond maxPerConnection, or reset. */
  readonly deallocated: number;
}

export interface PreparedStats extends PreparedFigures {
  readonly enabled: boolean;
  readonly maxPerConnection: number;
  readonly byNode: Readonly<Record<string, PreparedFigures>>;
}

interface MutableFigures {
  prepared: number;
  executedByName: number;
  reprepared: number;
  deallocated: number;
}

interface ConnectionStatements {
  /** Statement name -> text, least recently used first out. */
  readonly kept: LRUCache<string, string>;
  readonly figures: MutableFigures;
}

/** What the cluster knows about one statement text. */
interface TextEntry {
  /** Null until the text recurs: a text seen once is sent unnamed. */
  name: string | null;
}

/** Only plain DML and queries gain from a plan kept; utility statements and DDL never do. */
const PREPARABLE_REASONS: ReadonlySet<ClassificationReason> = new Set<ClassificationReason>([
  'select',
  'values',
  'table',
  'write',
  'locking-clause',
  'writable-cte',
  'volatile-function',
  'hint-primary',
  'hint-replica',
]);

/** 'write' also covers COPY FROM; the first word tells the statements Parse can keep. */
const PREPARABLE_WORDS: ReadonlySet<string> = new Set([
  'select',
  'with',
  'insert',
  'update',
  'delete',
  'merge',
  'values',
  'table',
]);

/** Texts the cluster remembers (whether seen once, or their name). */
const TEXTS_REMEMBERED = 5_000;
const NAME_PREFIX = 'pgpulse_';

/** pg's client-side record of the named statements on a connection. */
interface PgStatementMaps {
  parsedStatements?: Record<string, string>;
  submittedNamedStatements?: Record<string, string>;
}

interface PgErrorFields {
  readonly code?: unknown;
  readonly routine?: unknown;
  readonly message?: unknown;
}

/**
 * Automatic prepared statements. A statement text that recurs is prepared on a connection the
 * first time that connection runs it and sent by name (pg's `name` field) from then on, so
 * PostgreSQL skips parse and plan. Each connection keeps at most `maxPerConnection` of them,
 * least recently used ones deallocated.
 *
 * Only outside a transaction block: when a schema change makes a prepared form stale the
 * server refuses it at Bind, before anything runs, and out of a transaction it can be prepared
 * again and retried on the same connection without the caller seeing it; inside one the error
 * would already have aborted the transaction.
 */
export class PreparedStatements implements PreparedStatementHook {
  readonly #enabled: boolean;
  readonly #max: number;
  readonly #texts = new LRUCache<string, TextEntry>({ max: TEXTS_REMEMBERED });
  readonly #connections = new WeakMap<pg.Client, ConnectionStatements>();
  readonly #figures = new Map<string, MutableFigures>();
  #nextName = 0;

  constructor(config: ResolvedPreparedStatementsConfig) {
    this.#enabled = config.enabled;
    this.#max = config.maxPerConnection;
  }

  run(
    client: pg.Client,
    request: QueryRequest,
    cls: Classification,
    node: ClusterNode,
    event: { prepared?: PreparedUse },
  ): Promise<pg.QueryResult> | undefined {
    if (!this.#enabled) return undefined;
    const config = request.config;
    // A name the user gave is theirs to manage.
    if (config.name !== undefined || !PREPARABLE_REASONS.has(cls.reason)) return undefined;
    if (cls.session !== undefined && cls.session !== 'sequence') return undefined;
    if (transactionStatus(client) !== 'I') return undefined;
    const text = request.text;
    let entry = this.#texts.get(text);
    if (entry === undefined) {
      // First sighting: sent unnamed; a text never seen again costs no server memory.
      this.#texts.set(text, { name: null });
      return undefined;
    }
    if (entry.name === null) {
      const word = firstWord(text);
      if (word === undefined || !PREPARABLE_WORDS.has(word)) return undefined;
      entry = { name: `${NAME_PREFIX}${(++this.#nextName).toString(36)}` };
      this.#texts.set(text, entry);
    }
    const name = entry.name as string;
    const { kept, figures } = this.#on(client, node);
    if (kept.get(name) !== undefined && pgMaps(client).parsedStatements?.[name] === text) {
      figures.executedByName++;
      event.prepared = 'by-name';
    } else {
      kept.set(name, text);
      figures.prepared++;
      event.prepared = 'prepare';
    }
    return this.#send(client, request, name, kept, figures, event);
  }

  /**
   * Sends the statement by `name`; one whose prepared form went stale is prepared again and
   * retried once, unseen by the caller. A method rather than closures made per statement.
   */
  async #send(
    client: pg.Client,
    request: QueryRequest,
    name: string,
    kept: ConnectionStatements['kept'],
    figures: MutableFigures,
    event: { prepared?: PreparedUse },
  ): Promise<pg.QueryResult> {
    try {
      return await sendByName(client, request, name);
    } catch (err) {
      // The stack of the statement's callers (async frames), not of the socket read, as pg
      // gives it on its own promise path.
      if (err instanceof Error) Error.captureStackTrace(err);
      if (!isStale(err) || transactionStatus(client) !== 'I') throw err;
      // Refused at Bind or Parse, before the statement ran: a write too is safe to retry.
      deallocate(client, name);
      kept.set(name, request.text);
      figures.reprepared++;
      event.prepared = 'reprepare';
      return sendByName(client, request, name);
    }
  }

  executed(client: pg.Client, cls: Classification, text: string): void {
    const session = cls.session;
    if (session === undefined || session === 'sequence') return;
    const state = this.#connections.get(client);
    const kept = state?.kept;
    if (session === 'discard' || session === 'deallocate') {
      const everything = /\b(?:discard|deallocate)\s+(?:prepare\s+)?all\b/i.test(text);
      if (everything) {
        // The server dropped every prepared statement of this session, the user's too.
        const maps = pgMaps(client);
        maps.parsedStatements = {};
        maps.submittedNamedStatements = {};
        kept?.clear();
        return;
      }
      const one = /\bdeallocate\s+(?:prepare\s+)?("(?:[^"]|"")+"|[^\s;]+)/i.exec(text)?.[1];
      if (one !== undefined) {
        const name = one.startsWith('"') ? one.slice(1, -1).replace(/""/g, '"') : one.toLowerCase();
        forgetName(client, name);
        kept?.delete(name);
      }
      return;
    }
    // A new search_path resolves names differently: start this connection's set afresh.
    if (
      state !== undefined &&
      state.kept.size > 0 &&
      (session === 'set' || session === 'reset') &&
      /search_path|\ball\b/i.test(text)
    ) {
      for (const name of [...state.kept.keys()]) {
        deallocate(client, name);
        state.figures.deallocated++;
      }
      state.kept.clear();
    }
  }

  stats(): PreparedStats {
    const total: MutableFigures = { prepared: 0, executedByName: 0, reprepared: 0, deallocated: 0 };
    const byNode: Record<string, PreparedFigures> = {};
    for (const [name, figures] of this.#figures) {
      byNode[name] = { ...figures };
      total.prepared += figures.prepared;
      total.executedByName += figures.executedByName;
      total.reprepared += figures.reprepared;
      total.deallocated += figures.deallocated;
    }
    return { enabled: this.#enabled, maxPerConnection: this.#max, ...total, byNode };
  }

  /** This connection's statements (a connection stays on its node: its figures go there). */
  #on(client: pg.Client, node: ClusterNode): ConnectionStatements {
    let state = this.#connections.get(client);
    if (state === undefined) {
      const figures = this.#figuresOf(node);
      const kept = new LRUCache<string, string>({
        max: this.#max,
        dispose: (_text, name, reason) => {
          // Only an eviction leaves a statement on the server that nobody will use again.
          if (reason !== 'evict') return;
          deallocate(client, name);
          figures.deallocated++;
        },
      });
      state = { kept, figures };
      this.#connections.set(client, state);
    }
    return state;
  }

  #figuresOf(node: ClusterNode): MutableFigures {
    let figures = this.#figures.get(node.name);
    if (figures === undefined) {
      figures = { prepared: 0, executedByName: 0, reprepared: 0, deallocated: 0 };
      this.#figures.set(node.name, figures);
    }
    return figures;
  }
}

/** The statement under `name`: the caller's config object given the name, or its text and values. */
function sendByName(
  client: pg.Client,
  request: QueryRequest,
  name: string,
): Promise<pg.QueryResult> {
  const config = request.config;
  return request.plain
    ? sendNamed(client, name, request.text, config.values)
    : client.query({ ...config, name });
}

/**
 * `client.query({ name, text, values })` without the copy pg makes of every config object
 * (`cloneQueryConfig`: property descriptors, about a microsecond a statement): a pg.Query
 * built from the text (no copy), given the name, and submitted.
 */
function sendNamed(
  client: pg.Client,
  name: string,
  text: string,
  values: unknown[] | undefined,
): Promise<pg.QueryResult> {
  // A look-alike Client class (pool.Client) gets the config object, as pg.Pool would send.
  if (!(client instanceof pg.Client)) return (client as pg.Client).query({ name, text, values });
  const query = new pg.Query(text, values) as pg.Query & {
    name?: string;
    callback?: (err: Error | null, result?: pg.QueryResult) => void;
  };
  query.name = name;
  return new Promise((resolve, reject) => {
    query.callback = (err, result) => (err ? reject(err) : resolve(result as pg.QueryResult));
    client.query(query);
  });
}

function pgMaps(client: pg.Client): PgStatementMaps {
  return client.connection as unknown as PgStatementMaps;
}

/**
 * Queued on the connection ahead of whatever the lease sends next; a failure (gone already, or
 * the transaction is aborted) changes nothing the caller sees: a name left behind is met by
 * 42P05 at its next Parse, which prepares it again.
 */
function deallocate(client: pg.Client, name: string): void {
  forgetName(client, name);
  client.query(`DEALLOCATE ${name}`).catch(() => {});
}

/** pg would otherwise send only Bind for a name the server no longer has. */
function forgetName(client: pg.Client, name: string): void {
  const maps = pgMaps(client);
  if (maps.parsedStatements !== undefined) delete maps.parsedStatements[name];
  if (maps.submittedNamedStatements !== undefined) delete maps.submittedNamedStatements[name];
}

/**
 * A prepared form the server refused before running it: its result type changed under a schema
 * change (0A000, raised while revalidating the cached plan at Bind), it no longer exists
 * (26000, at Bind), or it is still there although pg forgot it (42P05, at Parse).
 */
function isStale(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, routine, message } = err as PgErrorFields;
  if (code === '26000' || code === '42P05') return true;
  return (
    code === '0A000' &&
    (routine === 'RevalidateCachedQuery' ||
      (typeof message === 'string' && message.includes('cached plan must not change result type')))
  );
}
