/** What the sandbox writes into each node's postgresql.conf and pg_hba.conf. */
import type { Node } from './node.js';

/**
 * A postgresql.conf value in `ClusterOptions.settings`: a string is written quoted, a number as
 * it is, a boolean as `on` or `off`.
 */
export type SettingValue = string | number | boolean;

/** What startCluster() starts: how many standbys, from which binaries, and how they are set up. */
export interface ClusterOptions {
  /** Number of streaming replicas (default 2). */
  readonly replicas?: number;
  /** Folder with `initdb` and `postgres`; default `PGPULSE_PG_BIN`, then the embedded binaries. */
  readonly pgBin?: string;
  /**
   * Synchronous replication: `true` makes commits wait for any one standby; a number N waits
   * for any N. Default: asynchronous.
   */
  readonly synchronous?: boolean | number;
  /** Extra postgresql.conf settings for every node, e.g. `{ log_min_duration_statement: 0 }`. */
  readonly settings?: Readonly<Record<string, SettingValue>>;
  /** `trust` (default) or `scram-sha-256` for TCP connections. */
  readonly auth?: 'trust' | 'scram-sha-256';
  /** Milliseconds to wait for a node to accept connections (default 30 000). */
  readonly startTimeoutMs?: number;
}

/** The lines appended to a node's postgresql.conf (the caller's settings win). */
export function renderConf(node: Node, options: ClusterOptions, replicas: readonly Node[]): string {
  const sync = options.synchronous;
  const syncCount = sync === true ? 1 : typeof sync === 'number' ? sync : 0;
  const settings: Record<string, SettingValue> = {
    listen_addresses: '127.0.0.1',
    port: node.port,
    unix_socket_directories: '',
    max_connections: 100,
    shared_buffers: '32MB',
    wal_level: 'replica',
    max_wal_senders: 10,
    wal_keep_size: '128MB',
    hot_standby: true,
    hot_standby_feedback: true,
    wal_receiver_status_interval: '1s',
    wal_retrieve_retry_interval: '100ms',
    // A sandbox trades durability against an OS crash for speed; a process crash loses nothing.
    fsync: false,
    full_page_writes: false,
    shared_preload_libraries: 'pg_stat_statements',
    'pg_stat_statements.track': 'all',
    track_io_timing: true,
    log_min_messages: 'warning',
    logging_collector: false,
    ...(syncCount > 0
      ? {
          synchronous_standby_names: `ANY ${syncCount} (${replicas.map((r) => r.name).join(', ')})`,
        }
      : {}),
    ...options.settings,
  };
  const lines = Object.entries(settings).map(([key, value]) => `${key} = ${formatSetting(value)}`);
  return `\n# pgpulse sandbox\n${lines.join('\n')}\n`;
}

function formatSetting(value: SettingValue): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return `'${value.replaceAll("'", "''")}'`;
}

/** A node's whole pg_hba.conf: local trust, TCP (and replication) from loopback with `auth`. */
export function renderHba(auth: 'trust' | 'scram-sha-256'): string {
  return [
    'local all all trust',
    `host all all 127.0.0.1/32 ${auth}`,
    `host replication all 127.0.0.1/32 ${auth}`,
    '',
  ].join('\n');
}

/** How SHOW prints a delay: PostgreSQL picks the largest whole unit (500ms, 2s, 1min). */
export function formatDelay(ms: number): string {
  const whole = Math.floor(ms);
  if (whole % 60_000 === 0) return `${whole / 60_000}min`;
  if (whole % 1_000 === 0) return `${whole / 1_000}s`;
  return `${whole}ms`;
}
