import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { findInstallation, type PgInstallation, sandboxRoot } from './binaries.js';
import { type Disposable, startWatchdog, track, untrack } from './cleanup.js';
import { FaultProxy } from './proxy.js';
import { chownTo, ensureTemplate, type Template } from './template.js';
import { sleep, waitUntil } from './wait.js';

export type SandboxRole = 'primary' | 'replica' | 'detached';
export type SettingValue = string | number | boolean;

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

export interface WaitOptions {
  readonly timeoutMs?: number;
}

/** One PostgreSQL server of the sandbox. */
export interface SandboxNode {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** What the sandbox made of it: the primary, a standby, or a former primary after a promotion. */
  readonly role: SandboxRole;
  readonly running: boolean;
  readonly dataDir: string;
  /** Process id of the postmaster while running. */
  readonly pid: number | undefined;
}

class Node implements SandboxNode {
  role: SandboxRole;
  process: ChildProcess | undefined;
  replayPaused = false;
  proxyInstance: FaultProxy | undefined;
  readonly host = '127.0.0.1';

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dataDir: string,
    role: SandboxRole,
    private readonly password: string,
  ) {
    this.role = role;
  }

  get url(): string {
    return nodeUrl(this.host, this.port, this.password);
  }

  get running(): boolean {
    return (
      this.process !== undefined &&
      this.process.exitCode === null &&
      this.process.signalCode === null
    );
  }

  get pid(): number | undefined {
    return this.running ? this.process?.pid : undefined;
  }

  toJSON() {
    return {
      name: this.name,
      host: this.host,
      port: this.port,
      role: this.role,
      running: this.running,
    };
  }
}

function nodeUrl(host: string, port: number, password: string): string {
  return `postgres://postgres:${password}@${host}:${port}/postgres`;
}

export class SandboxCluster implements Disposable {
  private readonly nodes: Node[];
  private stopped = false;

  /** @internal use startCluster() */
  constructor(
    readonly dir: string,
    private readonly pg: PgInstallation,
    nodes: Node[],
    private readonly watchdog: ChildProcess,
    private readonly startTimeoutMs: number,
  ) {
    this.nodes = nodes;
  }

  /** The node that currently takes writes (the most recently promoted one). */
  get primary(): SandboxNode {
    const primary = this.nodes.find((n) => n.role === 'primary');
    if (!primary) throw new Error('The sandbox has no primary');
    return primary;
  }

  /** The standbys, in their original order. */
  get replicas(): readonly SandboxNode[] {
    return this.nodes.filter((n) => n.role === 'replica');
  }

  /** Every node, including a former primary. */
  get all(): readonly SandboxNode[] {
    return this.nodes;
  }

  /** `postgres --version` of the server binaries in use. */
  get version(): string {
    return this.pg.version;
  }

  node(name: string): SandboxNode {
    return this.get(name);
  }

  /**
   * A connected superuser client of a node, for tests that hold one session. It ignores the
   * error a server shutdown reports (stop(), kill(), pg_terminate_backend) so that it never
   * becomes an unhandled error; end it when done.
   */
  async connect(name: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.get(name).url });
    client.on('error', () => {});
    await client.connect();
    return client;
  }

  /** Runs one statement on a node with a short-lived superuser connection. */
  async query<R extends pg.QueryResultRow = Record<string, unknown>>(
    name: string,
    sql: string,
    params?: readonly unknown[],
  ): Promise<R[]> {
    const node = this.get(name);
    const client = new pg.Client({
      host: node.host,
      port: node.port,
      user: 'postgres',
      password: this.password,
      database: 'postgres',
      connectionTimeoutMillis: 5_000,
      application_name: 'pgpulse-sandbox',
    });
    client.on('error', () => {});
    await client.connect();
    try {
      const result = await client.query<R>(sql, params as unknown[] | undefined);
      return result.rows;
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Crashes a node (immediate shutdown: no checkpoint, recovery on next start). */
  async kill(name: string): Promise<void> {
    await this.signal(this.get(name), 'SIGQUIT');
  }

  /** Stops a node cleanly (fast shutdown). */
  async stopNode(name: string): Promise<void> {
    await this.signal(this.get(name), 'SIGINT');
  }

  /** Starts a stopped or killed node and waits until it accepts connections. */
  async start(name: string): Promise<void> {
    const node = this.get(name);
    if (node.running) return;
    await this.launch(node);
  }

  /** Promotes a standby to primary and waits until it accepts writes. */
  async promote(name: string, options: WaitOptions = {}): Promise<void> {
    const node = this.get(name);
    const [row] = await this.query<{ promoted: boolean }>(
      name,
      'SELECT pg_promote(true, $1) AS promoted',
      [Math.ceil((options.timeoutMs ?? 30_000) / 1000)],
    );
    if (!row?.promoted) throw new Error(`Promotion of ${name} did not complete in time`);
    for (const other of this.nodes) if (other.role === 'primary') other.role = 'detached';
    node.role = 'primary';
    node.replayPaused = false;
  }

  /** Pauses WAL replay on a standby: its replay LSN stops while it keeps receiving. */
  async pauseReplay(name: string): Promise<void> {
    await this.query(name, 'SELECT pg_wal_replay_pause()');
    this.get(name).replayPaused = true;
  }

  async resumeReplay(name: string): Promise<void> {
    await this.query(name, 'SELECT pg_wal_replay_resume()');
    this.get(name).replayPaused = false;
  }

  /** Makes a standby apply each commit only `ms` after the primary made it. */
  async setApplyDelay(name: string, ms: number): Promise<void> {
    const value = `${Math.max(0, Math.floor(ms))}ms`;
    await this.query(name, `ALTER SYSTEM SET recovery_min_apply_delay = '${value}'`);
    await this.query(name, 'SELECT pg_reload_conf()');
    // pg_reload_conf() only signals the server: wait until a new session sees the value, then
    // give the startup process (which applies WAL) a moment to take the same signal.
    const expected = ms <= 0 ? '0' : value;
    await this.poll(
      5_000,
      async () => {
        const [row] = await this.query<{ v: string }>(
          name,
          "SELECT current_setting('recovery_min_apply_delay') AS v",
        );
        return row?.v === expected || (expected !== '0' && row?.v === formatDelay(ms));
      },
      () => `${name} did not take recovery_min_apply_delay = ${value}`,
    );
    await sleep(50);
  }

  /** Re-points a standby at another primary (after a failover) and waits until it streams from it. */
  async follow(name: string, newPrimaryName: string, options: WaitOptions = {}): Promise<void> {
    const node = this.get(name);
    const target = this.get(newPrimaryName);
    const conninfo = this.conninfo(target, node.name).replaceAll("'", "''");
    await this.query(name, `ALTER SYSTEM SET primary_conninfo = '${conninfo}'`);
    await this.query(name, 'SELECT pg_reload_conf()');
    if (node.role === 'detached') node.role = 'replica';
    await this.poll(
      options.timeoutMs ?? 15_000,
      async () => {
        const [row] = await this.query<{ ok: boolean }>(
          name,
          "SELECT count(*) > 0 AS ok FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_port = $1",
          [target.port],
        );
        return row?.ok === true;
      },
      () => `${name} did not start streaming from ${newPrimaryName}`,
    );
  }

  /**
   * Waits until every running standby whose replay is not paused has replayed everything the
   * primary had written when this was called.
   */
  async waitForReplay(options: WaitOptions = {}): Promise<void> {
    const [row] = await this.query<{ lsn: string }>(
      this.primary.name,
      'SELECT pg_current_wal_lsn()::text AS lsn',
    );
    const lsn = row?.lsn;
    const waiting = this.nodes.filter((n) => n.role === 'replica' && n.running && !n.replayPaused);
    await Promise.all(
      waiting.map((node) =>
        this.poll(
          options.timeoutMs ?? 15_000,
          async () => {
            const [r] = await this.query<{ ok: boolean }>(
              node.name,
              'SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS ok',
              [lsn],
            );
            return r?.ok === true;
          },
          () => `${node.name} did not replay up to ${lsn}`,
        ),
      ),
    );
  }

  /**
   * @internal A standby accepts connections before its WAL receiver has reached the primary;
   * a started cluster is one whose standbys all stream (pg_stat_replication shows them).
   */
  async waitForStreaming(names: readonly string[], timeoutMs = 15_000): Promise<void> {
    if (names.length === 0) return;
    await this.poll(
      timeoutMs,
      async () => {
        const rows = await this.query<{ name: string }>(
          this.primary.name,
          "SELECT application_name AS name FROM pg_stat_replication WHERE state = 'streaming'",
        );
        const streaming = new Set(rows.map((r) => r.name));
        return names.every((n) => streaming.has(n));
      },
      () => `standbys ${names.join(', ')} did not start streaming`,
    );
  }

  /** A TCP fault proxy in front of a node (created on first use, stable across restarts). */
  async proxy(name: string): Promise<FaultProxy> {
    const node = this.get(name);
    node.proxyInstance ??= await FaultProxy.listen(
      () => ({ host: node.host, port: node.port }),
      (host, port) => nodeUrl(host, port, this.password),
    );
    return node.proxyInstance;
  }

  /** Stops every node, closes the proxies and deletes the cluster's folder. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(
      this.nodes.map(async (node) => {
        await node.proxyInstance?.close();
        await this.signal(node, 'SIGINT', 10_000).catch(() => this.signal(node, 'SIGKILL'));
      }),
    );
    this.finish();
  }

  /** Synchronous best effort for process exit: crash the servers and remove the folder. */
  disposeSync(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const node of this.nodes) if (node.running) node.process?.kill('SIGQUIT');
    // The servers may still be writing; the watchdog removes what is left once they are gone.
    rmSync(this.dir, { recursive: true, force: true });
  }

  private finish(): void {
    untrack(this);
    if (this.watchdog.pid !== undefined) {
      try {
        process.kill(this.watchdog.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private get password(): string {
    return readFileSync(join(this.dir, 'password'), 'utf8');
  }

  private get(name: string): Node {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) {
      throw new Error(
        `No sandbox node named "${name}"; nodes are ${this.nodes.map((n) => n.name).join(', ')}`,
      );
    }
    return node;
  }

  /** @internal */
  conninfo(target: SandboxNode, applicationName: string): string {
    return `host=${target.host} port=${target.port} user=postgres password=${this.password} application_name=${applicationName}`;
  }

  /** @internal */
  async launch(node: Node): Promise<void> {
    const log = openSync(join(this.dir, `${node.name}.log`), 'a');
    const child = spawn(join(this.pg.binDir, 'postgres'), ['-D', node.dataDir], {
      stdio: ['ignore', log, log],
      ...(this.pg.runAs ? { uid: this.pg.runAs.uid, gid: this.pg.runAs.gid } : {}),
    });
    closeSync(log);
    child.unref();
    node.process = child;
    const wanted = node.role === 'primary' || node.role === 'detached' ? 'ready' : 'standby';
    const deadline = Date.now() + this.startTimeoutMs;
    const pidFile = join(node.dataDir, 'postmaster.pid');
    for (;;) {
      if (!node.running) {
        throw new Error(`${node.name} exited while starting:\n${this.logTail(node)}`);
      }
      // postmaster.pid's 8th line is the server status that pg_ctl -w waits for.
      const status = existsSync(pidFile)
        ? readFileSync(pidFile, 'utf8').split('\n')[7]?.trim()
        : undefined;
      if (status === wanted || (wanted === 'standby' && status === 'ready')) return;
      if (Date.now() > deadline) {
        throw new Error(
          `${node.name} did not accept connections within ${this.startTimeoutMs} ms:\n${this.logTail(node)}`,
        );
      }
      await sleep(5);
    }
  }

  private logTail(node: Node): string {
    const path = join(this.dir, `${node.name}.log`);
    return existsSync(path)
      ? readFileSync(path, 'utf8').split('\n').slice(-15).join('\n')
      : '(no log)';
  }

  private async signal(node: Node, signal: NodeJS.Signals, timeoutMs = 30_000): Promise<void> {
    const child = node.process;
    if (!child || !node.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${node.name} did not exit after ${signal}`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async poll(
    timeoutMs: number,
    check: () => Promise<boolean>,
    describe: () => string,
  ): Promise<void> {
    await waitUntil(check, { timeoutMs, message: describe, retryErrors: true });
  }
}

/**
 * Starts a real PostgreSQL primary with `replicas` streaming standbys on free local ports, in a
 * temp folder removed by stop() (or when the process exits, however it exits).
 */
export async function startCluster(options: ClusterOptions = {}): Promise<SandboxCluster> {
  const replicaCount = options.replicas ?? 2;
  if (!Number.isInteger(replicaCount) || replicaCount < 0) {
    throw new Error(`replicas must be a whole number >= 0 (got ${replicaCount})`);
  }
  const pgInstall = findInstallation(options.pgBin);
  const template: Template = ensureTemplate(pgInstall);
  const dir = mkdtempSync(join(sandboxRoot(), 'pgpulse-sandbox-'));
  if (pgInstall.runAs) chownTo(dir, pgInstall.runAs);
  writeFileSync(join(dir, 'password'), template.password, { mode: 0o600 });
  const watchdog = startWatchdog(dir);

  const names = ['primary', ...Array.from({ length: replicaCount }, (_, i) => `replica${i + 1}`)];
  const ports = await freePorts(names.length);
  const nodes = names.map(
    (name, i) =>
      new Node(
        name,
        ports[i]!,
        join(dir, name),
        i === 0 ? 'primary' : 'replica',
        template.password,
      ),
  );
  const cluster = new SandboxCluster(
    dir,
    pgInstall,
    nodes,
    watchdog,
    options.startTimeoutMs ?? 30_000,
  );
  track(cluster);
  try {
    copyDataDirs(template.dataDir, nodes, pgInstall);
    const primary = nodes[0]!;
    const replicas = nodes.slice(1);
    await Promise.all(
      nodes.map((node) =>
        appendFile(join(node.dataDir, 'postgresql.conf'), renderConf(node, options, replicas)),
      ),
    );
    const hba = renderHba(options.auth ?? 'trust');
    for (const node of nodes) writeFileSync(join(node.dataDir, 'pg_hba.conf'), hba);
    for (const replica of replicas) {
      writeFileSync(join(replica.dataDir, 'standby.signal'), '');
      await appendFile(
        join(replica.dataDir, 'postgresql.conf'),
        `primary_conninfo = '${cluster.conninfo(primary, replica.name)}'\n`,
      );
    }
    await cluster.launch(primary);
    await Promise.all(replicas.map((r) => cluster.launch(r)));
    await cluster.waitForStreaming(replicas.map((r) => r.name));
    return cluster;
  } catch (err) {
    await cluster.stop().catch(() => cluster.disposeSync());
    throw err;
  }
}

function copyDataDirs(
  templateDir: string,
  nodes: readonly Node[],
  pgInstall: PgInstallation,
): void {
  for (const node of nodes) {
    // cp -a as the server's user keeps ownership and the 0700 mode PostgreSQL insists on.
    const result = spawnSync('cp', ['-a', templateDir, node.dataDir], {
      encoding: 'utf8',
      ...(pgInstall.runAs ? { uid: pgInstall.runAs.uid, gid: pgInstall.runAs.gid } : {}),
    });
    if (result.status !== 0) throw new Error(`Could not copy the data directory: ${result.stderr}`);
  }
}

function renderConf(node: Node, options: ClusterOptions, replicas: readonly Node[]): string {
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

function renderHba(auth: 'trust' | 'scram-sha-256'): string {
  return [
    'local all all trust',
    `host all all 127.0.0.1/32 ${auth}`,
    `host replication all 127.0.0.1/32 ${auth}`,
    '',
  ].join('\n');
}

async function freePorts(count: number): Promise<number[]> {
  // Hold every listener until all ports are known so the same port is not handed out twice.
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    return typeof address === 'object' && address ? address.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** How SHOW prints a delay: PostgreSQL picks the largest whole unit (500ms, 2s, 1min). */
function formatDelay(ms: number): string {
  const whole = Math.floor(ms);
  if (whole % 60_000 === 0) return `${whole / 60_000}min`;
  if (whole % 1_000 === 0) return `${whole / 1_000}s`;
  return `${whole}ms`;
}
