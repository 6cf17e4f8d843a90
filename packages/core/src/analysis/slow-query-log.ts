import type { NodeRole } from '../errors/index.js';
import { isParserLoaded, loadParser } from '../sql/index.js';
import { fingerprintQuery, type QueryFingerprint } from './fingerprint.js';
import { LatencyHistogram } from './latency-histogram.js';
import { integerOption } from './options.js';
import type {
  SlowQueryEntry,
  SlowQueryInput,
  SlowQueryLogOptions,
  SlowQueryLogSnapshot,
  SlowQueryRecord,
  SlowQuerySample,
} from './slow-query-log-types.js';

/** Texts longer than this are fingerprinted on each call: they rarely repeat. */
const MAX_CACHED_TEXT_LENGTH = 32_768;
/** Bounds the per-entry node map against callers that pass unbounded node names. */
const MAX_NODES_PER_ENTRY = 32;
const MAX_PARAM_TEXT = 256;

interface Entry {
  readonly id: QueryFingerprint;
  calls: number;
  totalMs: number;
  minMs: number;
  maxMs: number;
  rows: number;
  readonly firstSeenAt: number;
  lastSeenAt: number;
  readonly histogram: LatencyHistogram;
  readonly nodes: Map<string, number>;
  readonly samples: (SlowQuerySample | undefined)[];
  nextSample: number;
  /** This entry's share of `bytes`: its texts and its samples. */
  bytes: number;
}

/** A string's worst-case size in V8 (two-byte representation). */
export function stringBytes(text: string): number {
  return text.length * 2;
}

/** Rough fixed cost of an entry (objects, histogram, maps) and of a sample, in bytes. */
const ENTRY_OVERHEAD_BYTES = 1_024;
const SAMPLE_OVERHEAD_BYTES = 160;

function sampleBytes(sample: SlowQuerySample | undefined): number {
  if (sample === undefined) return 0;
  let bytes = SAMPLE_OVERHEAD_BYTES + stringBytes(sample.node);
  if (sample.params !== undefined) {
    for (const param of sample.params) bytes += typeof param === 'string' ? stringBytes(param) : 16;
  }
  return bytes;
}

/** A JSON-safe copy of a parameter value that cannot grow a sample without bound. */
function copyParam(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'number':
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'string':
      return value.length > MAX_PARAM_TEXT ? `${value.slice(0, MAX_PARAM_TEXT)}…` : value;
    default:
      break;
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > MAX_PARAM_TEXT ? `${text.slice(0, MAX_PARAM_TEXT)}…` : text;
  } catch {
    return '<unserializable>';
  }
}

/**
 * Statistics per statement fingerprint for the statements a caller deems slow: calls, total,
 * mean, p95, min, max, rows, calls per node, and a few recent samples. Memory is bounded by
 * `maxFingerprints` (least recently seen evicted and counted) and the per-entry sample ring.
 *
 * Invariant 6: what it returns holds normalized texts only (libpg-query replaces every literal
 * with `$n`; unparseable texts are masked or withheld) and no parameter value unless
 * `captureParams` is set. Raw statement texts are never stored.
 *
 * Call `await loadParser()` (or `SlowQueryLog.create`) before recording: until the parser is
 * loaded, texts get a masked-text hash fingerprint that differs from the parsed one.
 */
export class SlowQueryLog {
  readonly #entries = new Map<string, Entry>();
  readonly #cache = new Map<string, QueryFingerprint>();
  readonly #maxFingerprints: number;
  readonly #samplesPerFingerprint: number;
  readonly #captureParams: boolean;
  readonly #maxQueryLength: number;
  readonly #cacheSize: number;
  readonly #now: () => number;
  readonly #maxBytes: number;
  #bytes = 0;
  #evictions = 0;

  constructor(options: SlowQueryLogOptions = {}) {
    this.#maxFingerprints = integerOption('maxFingerprints', options.maxFingerprints, 500, 1);
    this.#samplesPerFingerprint = integerOption(
      'samplesPerFingerprint',
      options.samplesPerFingerprint,
      5,
      0,
    );
    this.#maxQueryLength = integerOption('maxQueryLength', options.maxQueryLength, 4096, 16);
    this.#cacheSize = integerOption('cacheSize', options.cacheSize, 5000, 0);
    this.#captureParams = options.captureParams === true;
    this.#maxBytes =
      options.maxBytes === undefined
        ? Number.POSITIVE_INFINITY
        : integerOption('maxBytes', options.maxBytes, 0, 1);
    this.#now = options.now ?? Date.now;
    // Starts loading early so the first slow statements already get parsed fingerprints; a
    // failure surfaces where the parser is awaited (start-up), not here.
    if (!isParserLoaded()) loadParser().catch(() => {});
  }

  /** Creates a log once the SQL parser is loaded, so every fingerprint comes from libpg-query. */
  static async create(options: SlowQueryLogOptions = {}): Promise<SlowQueryLog> {
    await loadParser();
    return new SlowQueryLog(options);
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * What the entries hold, in bytes: their normalized texts, fingerprints and samples (2 bytes
   * a character) plus a fixed overhead each. Bounded by `maxBytes`.
   */
  get bytes(): number {
    return this.#bytes;
  }

  /** Fingerprints evicted to stay within `maxFingerprints` or `maxBytes`. */
  get evictions(): number {
    return this.#evictions;
  }

  get captureParams(): boolean {
    return this.#captureParams;
  }

  /** Fingerprint and normalized text of a statement, cached by text. Never throws. */
  fingerprint(sql: string): QueryFingerprint {
    const hit = this.#cache.get(sql);
    if (hit !== undefined) return hit;
    const id = fingerprintQuery(sql, this.#maxQueryLength);
    // A hash fingerprint from an unloaded parser is not cached: the parsed one replaces it.
    if (
      this.#cacheSize > 0 &&
      typeof sql === 'string' &&
      sql.length <= MAX_CACHED_TEXT_LENGTH &&
      (id.source === 'libpg-query' || isParserLoaded())
    ) {
      if (this.#cache.size >= this.#cacheSize) {
        const oldest = this.#cache.keys().next();
        if (oldest.done !== true) this.#cache.delete(oldest.value);
      }
      this.#cache.set(sql, id);
    }
    return id;
  }

  /** Records one call. O(1) for a cached text; never throws for any input. */
  record(input: SlowQueryInput): SlowQueryRecord {
    const id = this.fingerprint(input.sql);
    const at = typeof input.at === 'number' && Number.isFinite(input.at) ? input.at : this.#now();
    const durationMs =
      typeof input.durationMs === 'number' && Number.isFinite(input.durationMs)
        ? Math.max(0, input.durationMs)
        : 0;
    const rows =
      typeof input.rows === 'number' && Number.isFinite(input.rows) && input.rows >= 0
        ? input.rows
        : undefined;
    let entry = this.#entries.get(id.fingerprint);
    const firstSeen = entry === undefined;
    if (entry === undefined) {
      entry = this.#newEntry(id, at);
      this.#entries.set(id.fingerprint, entry);
      this.#bytes += entry.bytes;
      if (this.#entries.size > this.#maxFingerprints) this.#evictOldest();
    } else {
      // Map order is recency order: re-inserting makes eviction pick the least recent in O(1).
      this.#entries.delete(id.fingerprint);
      this.#entries.set(id.fingerprint, entry);
    }
    entry.calls++;
    entry.totalMs += durationMs;
    if (durationMs < entry.minMs) entry.minMs = durationMs;
    if (durationMs > entry.maxMs) entry.maxMs = durationMs;
    if (rows !== undefined) entry.rows += rows;
    entry.lastSeenAt = at;
    entry.histogram.record(durationMs);
    const node = String(input.node);
    const nodeCalls = entry.nodes.get(node);
    if (nodeCalls !== undefined) entry.nodes.set(node, nodeCalls + 1);
    else if (entry.nodes.size < MAX_NODES_PER_ENTRY) entry.nodes.set(node, 1);
    if (this.#samplesPerFingerprint > 0) {
      const sample = this.#sample(input, at, durationMs, rows, node);
      const delta = sampleBytes(sample) - sampleBytes(entry.samples[entry.nextSample]);
      entry.bytes += delta;
      this.#bytes += delta;
      entry.samples[entry.nextSample] = sample;
      entry.nextSample = (entry.nextSample + 1) % this.#samplesPerFingerprint;
    }
    // The entry just recorded is the most recent, so it is the last to go.
    while (this.#bytes > this.#maxBytes && this.#entries.size > 1) this.#evictOldest();
    return {
      fingerprint: id.fingerprint,
      normalized: id.normalized,
      calls: entry.calls,
      firstSeen,
    };
  }

  #newEntry(id: QueryFingerprint, at: number): Entry {
    return {
      id,
      calls: 0,
      totalMs: 0,
      minMs: Number.POSITIVE_INFINITY,
      maxMs: 0,
      rows: 0,
      firstSeenAt: at,
      lastSeenAt: at,
      histogram: new LatencyHistogram(),
      nodes: new Map(),
      samples: new Array<SlowQuerySample | undefined>(this.#samplesPerFingerprint),
      nextSample: 0,
      bytes: ENTRY_OVERHEAD_BYTES + stringBytes(id.normalized) + stringBytes(id.fingerprint),
    };
  }

  #evictOldest(): void {
    const oldest = this.#entries.keys().next();
    if (oldest.done === true) return;
    this.#bytes -= this.#entries.get(oldest.value)?.bytes ?? 0;
    this.#entries.delete(oldest.value);
    this.#evictions++;
  }

  #sample(
    input: SlowQueryInput,
    at: number,
    durationMs: number,
    rows: number | undefined,
    node: string,
  ): SlowQuerySample {
    const params = Array.isArray(input.params) ? input.params : undefined;
    const sample: {
      at: number;
      durationMs: number;
      rows?: number;
      node: string;
      role: NodeRole;
      paramCount: number;
      params?: readonly unknown[];
    } = { at, durationMs, node, role: input.role, paramCount: params?.length ?? 0 };
    if (rows !== undefined) sample.rows = rows;
    if (this.#captureParams && params !== undefined) sample.params = params.map(copyParam);
    return sample;
  }

  #snapshot(entry: Entry): SlowQueryEntry {
    const n = this.#samplesPerFingerprint;
    const samples: SlowQuerySample[] = [];
    for (let i = 0; i < n; i++) {
      const sample = entry.samples[(entry.nextSample + i) % n];
      if (sample !== undefined) samples.push(sample);
    }
    return {
      fingerprint: entry.id.fingerprint,
      query: entry.id.normalized,
      fingerprintSource: entry.id.source,
      calls: entry.calls,
      totalMs: entry.totalMs,
      meanMs: entry.calls === 0 ? 0 : entry.totalMs / entry.calls,
      p95Ms: entry.histogram.quantile(0.95),
      minMs: entry.calls === 0 ? 0 : entry.minMs,
      maxMs: entry.maxMs,
      rows: entry.rows,
      firstSeenAt: entry.firstSeenAt,
      lastSeenAt: entry.lastSeenAt,
      nodes: Object.fromEntries(entry.nodes),
      samples,
    };
  }

  get(fingerprint: string): SlowQueryEntry | undefined {
    const entry = this.#entries.get(fingerprint);
    return entry === undefined ? undefined : this.#snapshot(entry);
  }

  /** Every entry, by total time spent, the largest first. */
  entries(): SlowQueryEntry[] {
    return [...this.#entries.values()]
      .sort((a, b) => b.totalMs - a.totalMs)
      .map((entry) => this.#snapshot(entry));
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  toJSON(): SlowQueryLogSnapshot {
    return {
      captureParams: this.#captureParams,
      fingerprints: this.#entries.size,
      evictions: this.#evictions,
      entries: this.entries(),
    };
  }
}
