import pg from 'pg';
import { forgetPassword, type NodeConnectionOptions } from '../config/index.js';
import { ProbeTimeoutError } from '../errors/index.js';
import { untraced } from '../tracing/index.js';
import { type Lsn, parseLsn } from './lsn.js';

/** What one probe round trip learns about a node. */
export interface ProbeResult {
  /** When the probe was sent (ms, performance.now clock): the LSNs are at least this recent. */
  readonly sentAt: number;
  readonly roundTripMs: number;
  /**
   * The first statement on a new connection: its round trip includes the new backend's
   * catalog cache warm-up (0.9–2.7 ms against ~0.3 ms after, measured on the sandbox), so it
   * is not a latency sample (the balancer would read one noisy first sample for seconds).
   */
  readonly firstOnConnection: boolean;
  readonly inRecovery: boolean;
  /** Primary only: pg_current_wal_lsn(). */
  readonly currentLsn: Lsn | undefined;
  /** Standby only. */
  readonly receiveLsn: Lsn | undefined;
  readonly replayLsn: Lsn | undefined;
  readonly replayPaused: boolean;
  readonly timeline: number | undefined;
}

// One statement, one round trip. CASE keeps primary-only functions from running on a standby.
const PROBE_SQL = `SELECT
  pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  pg_last_wal_replay_lsn()::text AS replay_lsn,
  CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END AS replay_paused,
  CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1)
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline`;

interface ProbeRow {
  in_recovery: boolean;
  current_lsn: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  replay_paused: boolean;
  timeline: number | null;
}

/** The least time one of pgpulse's own statements on a probe connection gets. */
const OWN_STATEMENT_MIN_MS = 5_000;

/**
 * Keeps one dedicated connection per node for health probes, outside the node's pool, so a
 * saturated pool never delays a probe and a probe never takes an application connection. Every
 * probe, connect included, is bounded by `timeoutMs`: a blackholed node costs one timeout.
 */
export class NodeProber {
  private client: pg.Client | undefined;
  /** The error of the latest probe, or undefined when it succeeded (ready() judges it). */
  lastFailure: unknown;
  /** When the latest probe's statement was sent (after a connect, when it needed one). */
  private queriedAt: number | undefined;
  /** The latest probe's statement was the first on its connection. */
  private firstOnConnection = false;

  constructor(
    private readonly name: string,
    private readonly connection: NodeConnectionOptions,
    private readonly timeoutMs: number,
    private readonly applicationName: string,
  ) {}

  private inFlight: Promise<ProbeResult> | undefined;
  /** Connections that already ran a statement (the catalog reads count too). */
  private readonly used = new WeakSet<pg.Client>();

  /**
   * One probe; a call while one is in flight shares it (the periodic probe and an on-demand
   * position check never put two statements on this connection).
   */
  probe(): Promise<ProbeResult> {
    this.inFlight ??= this.probeOnce().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async probeOnce(): Promise<ProbeResult> {
    const sentAt = performance.now();
    try {
      this.queriedAt = undefined;
      const row = await this.bounded(() => this.run(), this.timeoutMs);
      this.lastFailure = undefined;
      return {
        sentAt,
        // The statement's round trip only: a probe that had to connect first would otherwise
        // feed the node's latency average a connect time, which starved a replica (#11 item 7).
        roundTripMs: performance.now() - (this.queriedAt ?? sentAt),
        firstOnConnection: this.firstOnConnection,
        inRecovery: row.in_recovery,
        currentLsn: parseLsn(row.current_lsn),
        receiveLsn: parseLsn(row.receive_lsn),
        replayLsn: parseLsn(row.replay_lsn),
        replayPaused: row.replay_paused,
        timeline: row.timeline ?? undefined,
      };
    } catch (err) {
      this.lastFailure = err;
      throw err;
    }
  }

  /**
   * `work` on this connection (untraced), failing with ProbeTimeoutError after `ms`; a failure
   * or timeout discards the connection, which the next probe reopens.
   */
  private async bounded<T>(work: () => Promise<T>, ms: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProbeTimeoutError(this.name, ms)), ms);
    });
    try {
      return await Promise.race([untraced(work), timeout]);
    } catch (err) {
      this.discard();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.discard();
  }

  /**
   * One of pgpulse's own statements (the function catalog) on this dedicated connection, so
   * that it never takes, opens or counts a connection of the application's pool (pg.Pool's
   * `totalCount` is 0 until the first statement, and an `onConnect` hook sees only the
   * application's connections). Bounded like a probe, with room for a larger answer.
   */
  query<R extends pg.QueryResultRow>(sql: string): Promise<R[]> {
    const ms = Math.max(this.timeoutMs * 5, OWN_STATEMENT_MIN_MS);
    return this.bounded(async () => {
      const client = await this.connected();
      this.used.add(client);
      return (await client.query<R>(sql)).rows;
    }, ms);
  }

  private async connected(): Promise<pg.Client> {
    if (!this.client) {
      const client = new pg.Client({
        ...this.connection,
        connectionTimeoutMillis: this.timeoutMs,
        application_name: `${this.applicationName}:health`,
      });
      client.on('error', () => this.discard());
      this.client = client;
      try {
        // The callback form: code that wraps or patches pg.Client#connect often handles only it.
        await new Promise<void>((resolve, reject) => {
          client.connect((err?: Error) => (err ? reject(err) : resolve()));
        });
      } finally {
        forgetPassword(client, this.connection.password);
      }
      // Between probes this socket must not keep the process alive (a script that is done
      // should exit); the probe's own timeout timer keeps it alive while a probe runs.
      (
        client as unknown as { connection: { stream: { unref?: () => void } } }
      ).connection.stream.unref?.();
    }
    return this.client;
  }

  private async run(): Promise<ProbeRow> {
    const client = await this.connected();
    this.firstOnConnection = !this.used.has(client);
    this.used.add(client);
    this.queriedAt = performance.now();
    const { rows } = await client.query<ProbeRow>(PROBE_SQL);
    const row = rows[0];
    if (!row) throw new Error(`health probe of "${this.name}" returned no row`);
    return row;
  }

  private discard(): void {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    // end() waits for the server, which may never answer; destroy the socket instead.
    const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } })
      .connection?.stream;
    stream?.destroy();
    client.end().catch(() => {});
  }
}
