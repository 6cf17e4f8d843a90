import type { MeterProvider } from '@opentelemetry/api';
import { LRUCache } from 'lru-cache';
import type pg from 'pg';
import type { ResolvedCacheConfig } from '../config/index.js';
import { findCacheHint } from './hint.js';
import { cacheKey } from './key.js';
import { currentCacheScope } from './scope.js';
import { estimateBytes } from './size.js';
import { ALL_TABLES, ANY_WRITE, bareName } from './tables.js';

export type CacheOutcome = 'hit' | 'miss' | 'bypass';

/** What `cluster.cache.stats()` returns; counts since start. */
export interface CacheStats {
  readonly hits: number;
  readonly misses: number;
  /** Reads that asked for the cache but could not use it (transaction, not read-only, ...). */
  readonly bypasses: number;
  readonly entries: number;
  /** Estimated bytes the entries hold (bounded by cache.maxBytes). */
  readonly bytes: number;
  /** Entries dropped to stay under maxBytes. */
  readonly evictions: number;
  /** Entries dropped because a table or tag they depend on changed. */
  readonly invalidations: number;
  /** hits / (hits + misses); 0 before any. */
  readonly hitRatio: number;
}

/** What a read's result was read at, for the consistency check. */
export interface ReadPosition {
  /** A WAL position the data is at least as new as (a lower bound); undefined when unknown. */
  readonly lsn: bigint | undefined;
  /** Set when the read ran on the primary: it started then (performance.now), so it saw every commit before. */
  readonly primaryAt: number | undefined;
}

/** A context's floor: entries older than `lsn` must not be served; 'unknown' serves none. */
export type RequiredPosition = bigint | undefined | 'unknown';

interface Entry {
  readonly result: pg.QueryResult;
  readonly tables: readonly string[];
  readonly tags: readonly string[];
  readonly lsn: bigint | undefined;
  /** performance.now() when stored. */
  readonly storedAt: number;
}

interface Flight {
  readonly promise: Promise<{ result: pg.QueryResult; position: ReadPosition }>;
  readonly startedAt: number;
}

/**
 * Read results by key in an LRU bounded by bytes, with indexes from table and tag to keys.
 * Invalidation bumps a sequence number so that a read that was in flight when its table
 * changed is not stored (it may have read the old rows).
 */
export class ResultCache {
  private readonly lru: LRUCache<string, Entry>;
  private readonly byTable = new Map<string, Set<string>>();
  private readonly byTag = new Map<string, Set<string>>();
  private readonly flights = new Map<string, Flight>();
  /** Sequence of the last invalidation of each table/tag, and of the last "everything". */
  private readonly changedAt = new Map<string, number>();
  private seq = 0;
  private allChangedAt = 0;
  private counts = { hits: 0, misses: 0, bypasses: 0, evictions: 0, invalidations: 0 };
  private dropping = false;

  /**
   * The age past which no entry is served right now, or undefined for no limit beyond the TTL:
   * set while the cross-instance channel is not subscribed (others' writes may go unheard).
   */
  maxServedAgeMs: () => number | undefined = () => undefined;

  /** When each table (and "everything") last changed, performance.now clock. */
  private readonly writtenAt = new Map<string, number>();

  /**
   * `lsnSince(t)`: the primary's WAL position from a probe sent at or after t (an upper bound of
   * any commit before t), or undefined while no such probe exists.
   */
  constructor(
    readonly config: ResolvedCacheConfig,
    private readonly lsnSince: (time: number) => bigint | undefined,
    meterProvider?: MeterProvider,
  ) {
    this.lru = new LRUCache<string, Entry>({
      maxSize: config.maxBytes,
      maxEntrySize: config.maxEntryBytes,
      sizeCalculation: (entry, key) =>
        Math.max(1, estimateBytes(entry.result.rows) + key.length * 2 + 200),
      ttlAutopurge: false,
      dispose: (entry, key, reason) => {
        this.unindex(key, entry);
        if (reason === 'evict') this.counts.evictions++;
        else if (reason === 'delete' && this.dropping) this.counts.invalidations++;
      },
    });
    if (meterProvider) {
      const meter = meterProvider.getMeter('pgpulse');
      meter
        .createObservableGauge('pgpulse.cache.hit_ratio', {
          description: 'Query result cache hits / (hits + misses) since start',
        })
        .addCallback((result) => result.observe(this.stats().hitRatio));
      meter
        .createObservableUpDownCounter('pgpulse.cache.bytes', {
          description: 'Estimated bytes held by the query result cache',
          unit: 'By',
        })
        .addCallback((result) => result.observe(this.lru.calculatedSize));
    }
  }

  /** The TTL a statement asks for (cached() scope or SQL hint), or undefined: not asked. */
  requested(text: string): { ttlMs: number; tags: readonly string[] } | undefined {
    const scope = currentCacheScope();
    const hint = findCacheHint(text);
    if (!scope && !hint) return undefined;
    return {
      ttlMs: hint?.ttlMs ?? scope?.ttlMs ?? this.config.defaultTtlMs,
      tags: scope?.tags ?? [],
    };
  }

  bypassed(): void {
    this.counts.bypasses++;
  }

  /**
   * Serves `key` from the cache when an entry exists that is at least as new as `required`;
   * otherwise runs `fetch` (one flight per key: concurrent callers share it) and stores its
   * result unless a table it read changed meanwhile.
   */
  async read(
    prefix: string,
    request: { text: string; values: readonly unknown[] | undefined; rowMode: string | undefined },
    tables: readonly string[],
    asked: { ttlMs: number; tags: readonly string[] },
    required: RequiredPosition,
    fetch: () => Promise<{ result: pg.QueryResult; position: ReadPosition }>,
  ): Promise<{ result: pg.QueryResult; outcome: CacheOutcome }> {
    const key = cacheKey(prefix, request.text, request.values, request.rowMode);
    const entry = this.lru.get(key);
    if (entry && fresh(entry.lsn, required) && this.servable(entry)) {
      this.counts.hits++;
      return { result: copyResult(entry.result), outcome: 'hit' };
    }
    this.counts.misses++;
    const flight = this.flights.get(key);
    if (flight && !this.changedSince(tables, asked.tags, flight.startedAt)) {
      const shared = await flight.promise;
      if (fresh(shared.position.lsn, required))
        return { result: copyResult(shared.result), outcome: 'miss' };
    }
    const startedAt = this.seq;
    const promise = fetch();
    const mine: Flight = { promise, startedAt };
    this.flights.set(key, mine);
    try {
      const { result, position } = await promise;
      if (!this.changedSince(tables, asked.tags, startedAt) && this.newEnough(tables, position)) {
        this.store(
          key,
          {
            result: copyResult(result),
            tables,
            tags: asked.tags,
            lsn: position.lsn,
            storedAt: performance.now(),
          },
          asked.ttlMs,
        );
      }
      return { result, outcome: 'miss' };
    } finally {
      if (this.flights.get(key) === mine) this.flights.delete(key);
    }
  }

  /** Drops the entries that read any of `tables` (bare names, or ALL_TABLES) or carry any of `tags`. */
  invalidate(tables: readonly string[], tags: readonly string[] = []): void {
    const seq = ++this.seq;
    const now = performance.now();
    if (this.writtenAt.size > 10_000) this.writtenAt.clear();
    if (tables.includes(ALL_TABLES)) this.writtenAt.set(ALL_TABLES, now);
    else for (const t of tables) this.writtenAt.set(bareName(t), now);
    if (tables.length > 0) {
      this.writtenAt.set(ANY_WRITE, now);
      tables = [...tables, ANY_WRITE];
    }
    this.dropping = true;
    try {
      if (tables.includes(ALL_TABLES)) {
        this.allChangedAt = seq;
        this.counts.invalidations += this.lru.size;
        this.dropping = false;
        this.lru.clear();
        this.changedAt.clear();
        return;
      }
      for (const [names, index] of [
        [tables.map(bareName), this.byTable],
        [tags.map((t) => `#${t}`), this.byTag],
      ] as const) {
        for (const name of names) {
          this.changedAt.set(name, seq);
          const keys = index.get(name.startsWith('#') ? name.slice(1) : name);
          if (!keys) continue;
          for (const key of [...keys]) this.lru.delete(key);
        }
      }
      // The sequence map only needs names newer than the oldest flight; keep it bounded.
      if (this.changedAt.size > 10_000) {
        this.changedAt.clear();
        this.allChangedAt = seq;
      }
    } finally {
      this.dropping = false;
    }
  }

  stats(): CacheStats {
    const { hits, misses } = this.counts;
    return {
      ...this.counts,
      entries: this.lru.size,
      bytes: this.lru.calculatedSize,
      hitRatio: hits + misses === 0 ? 0 : hits / (hits + misses),
    };
  }

  /** Drops every entry (not a write: reads after it need no newer position). */
  clear(): void {
    this.allChangedAt = ++this.seq;
    this.counts.invalidations += this.lru.size;
    this.lru.clear();
    this.changedAt.clear();
  }

  private servable(entry: Entry): boolean {
    const maxAge = this.maxServedAgeMs();
    return maxAge === undefined || performance.now() - entry.storedAt <= maxAge;
  }

  /**
   * A read that started after a write may still have run on a replica that had not replayed
   * it: store it only when its position provably includes the last write of each table.
   */
  private newEnough(tables: readonly string[], position: ReadPosition): boolean {
    const all = this.writtenAt.get(ALL_TABLES);
    for (const name of all === undefined ? tables : [...tables, ALL_TABLES]) {
      const at = this.writtenAt.get(name);
      if (at === undefined) continue;
      if (position.primaryAt !== undefined && position.primaryAt >= at) continue;
      const floor = this.lsnSince(at);
      if (floor === undefined || position.lsn === undefined || position.lsn < floor) return false;
    }
    return true;
  }

  private changedSince(tables: readonly string[], tags: readonly string[], seq: number): boolean {
    if (this.allChangedAt > seq) return true;
    for (const t of tables) if ((this.changedAt.get(t) ?? 0) > seq) return true;
    for (const t of tags) if ((this.changedAt.get(`#${t}`) ?? 0) > seq) return true;
    return false;
  }

  private store(key: string, entry: Entry, ttlMs: number): void {
    this.lru.set(key, entry, { ttl: ttlMs });
    if (!this.lru.has(key)) return; // too large for maxEntryBytes
    for (const t of entry.tables) index(this.byTable, t, key);
    for (const t of entry.tags) index(this.byTag, t, key);
  }

  private unindex(key: string, entry: Entry): void {
    for (const t of entry.tables) unindexOne(this.byTable, t, key);
    for (const t of entry.tags) unindexOne(this.byTag, t, key);
  }
}

function fresh(lsn: bigint | undefined, required: RequiredPosition): boolean {
  if (required === undefined) return true;
  if (required === 'unknown' || lsn === undefined) return false;
  return lsn >= required;
}

function index(map: Map<string, Set<string>>, name: string, key: string): void {
  let keys = map.get(name);
  if (!keys) {
    keys = new Set();
    map.set(name, keys);
  }
  keys.add(key);
}

function unindexOne(map: Map<string, Set<string>>, name: string, key: string): void {
  const keys = map.get(name);
  if (!keys) return;
  keys.delete(key);
  if (keys.size === 0) map.delete(name);
}

/** Each caller gets rows of its own: an ORM that maps or mutates them cannot touch the entry. */
function copyResult(result: pg.QueryResult): pg.QueryResult {
  return {
    command: result.command,
    rowCount: result.rowCount,
    oid: result.oid,
    fields: result.fields,
    rows: result.rows.map((row: unknown) =>
      Array.isArray(row) ? [...row] : { ...(row as Record<string, unknown>) },
    ),
  };
}
