/** A started sandbox: its nodes, one-statement queries, faults, promotion, replay waits, stop. */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { PgInstallation } from './binaries.js';
import { type Disposable, untrack } from './cleanup.js';
import { formatDelay } from './config.js';
import { type Node, nodeUrl, type SandboxNode } from './node.js';
import { launch, signal } from './postmaster.js';
import { FaultProxy } from './proxy.js';
import { sleep, waitUntil } from './wait.js';

/** How long promote(), follow() and waitForReplay() wait before they throw. */
export interface WaitOptions {
  /** Milliseconds (default 30 000 for promote(), 15 000 for follow() and waitForReplay()). */
  readonly timeoutMs?: number;
}

/**
 * A running sandbox from startCluster(): a PostgreSQL primary and its streaming standbys on
 * local ports, addressed by node name (`primary`, `replica1`...). stop() ends the servers and
 * deletes their folder.
 */
export class SandboxCluster implements Disposable {
  private readonly nodes: Node[];
  private stopped = false;

  /**
   * @internal for startCluster(). The constructor is private: the published declarations leave
   * out `@internal` members, and an internal constructor would show there as a public
   * `new SandboxCluster()` without arguments.
   */
  static create(
    dir: string,
    pg: PgInstallation,
    nodes: Node[],
    watchdog: ChildProcess,
    startTimeoutMs: number,
  ): SandboxCluster {
    return new SandboxCluster(dir, pg, nodes, watchdog, startTimeoutMs);
  }

  private constructor(
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

  /** The node named `name` ('primary', 'replica1', ...); throws for a name not in the cluster. */
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

  /** Resumes WAL replay paused by pauseReplay(): the standby catches up on what it received. */
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

  /** @internal Starts a node's server and waits until it accepts connections. */
  async launch(node: Node): Promise<void> {
    await launch(node, this.dir, this.pg, this.startTimeoutMs);
  }

  private async signal(node: Node, sig: NodeJS.Signals, timeoutMs = 30_000): Promise<void> {
    await signal(node, sig, timeoutMs);
  }

  private async poll(
    timeoutMs: number,
    check: () => Promise<boolean>,
    describe: () => string,
  ): Promise<void> {
    await waitUntil(check, { timeoutMs, message: describe, retryErrors: true });
  }
}
