import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { forgetPassword, type NodeConnectionOptions } from '../config/index.js';
import type { ClusterNode } from '../topology/index.js';
import { ALL_TABLES } from './tables.js';

/** NOTIFY refuses a payload of 8000 bytes or more; leave room for the envelope. */
const PAYLOAD_BUDGET = 7800;
/** More chunks than this for one change: "drop everything" says the same in one message. */
const MAX_CHUNKS = 8;
/** Queued names past this (while not connected) collapse to "drop everything". */
const MAX_PENDING = 5000;

export interface InvalidationChannelDeps {
  /** The node writes go to now (undefined during an outage). */
  primary(): ClusterNode | undefined;
  connectionOptions(node: ClusterNode): NodeConnectionOptions;
  connectTimeoutMs: number;
  applicationName: string;
  /** Another instance changed these tables (ALL_TABLES: everything) or tags. */
  received(tables: readonly string[], tags: readonly string[]): void;
  /** A new subscription: changes made while there was none were missed. */
  resubscribed(): void;
}

interface Message {
  /** The sender's instance id (its own messages are ignored). */
  readonly i: string;
  readonly t?: readonly string[];
  readonly g?: readonly string[];
}

/**
 * Cross-instance invalidation: one dedicated connection (not a pool one) to the primary that
 * LISTENs on `channel`, and sends this instance's changes there with pg_notify after they
 * committed. A heartbeat on the same connection bounds how long a silent failure (a dead
 * socket, a failover to another primary) can go unnoticed: `subscribed()` is true only while
 * the last answered heartbeat was sent less than `boundMs` ago on the current primary. The
 * socket is unref'd while idle, as the pools' idle connections are, so it never keeps a
 * finished process alive.
 */
export class InvalidationChannel {
  /** Tells this instance's messages from the others'. */
  readonly id = randomBytes(6).toString('base64url');
  private client: pg.Client | undefined;
  private node: ClusterNode | undefined;
  /** performance.now() at which the last answered heartbeat (or the LISTEN) was sent. */
  private confirmedAt: number | undefined;
  private connecting: Promise<void> | undefined;
  private beating = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly pendingTables = new Set<string>();
  private readonly pendingTags = new Set<string>();
  private flushing: Promise<void> | undefined;
  private busy = 0;
  /** Subscriptions made, messages sent (answered by the server) and heard from other instances. */
  subscriptions = 0;
  sent = 0;
  heard = 0;

  constructor(
    readonly channel: string,
    readonly boundMs: number,
    private readonly deps: InvalidationChannelDeps,
  ) {}

  start(): void {
    if (this.closed || this.timer) return;
    // A heartbeat every quarter bound: one slow answer does not yet end the subscription.
    const every = Math.max(10, Math.floor(this.boundMs / 4));
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
    this.tick();
  }

  /** Checks the subscription now (a failover just completed). */
  poke(): void {
    if (this.timer) this.tick();
  }

  /** True while changes of other instances are known to reach this one within the bound. */
  subscribed(now = performance.now()): boolean {
    return (
      this.client !== undefined &&
      this.confirmedAt !== undefined &&
      now - this.confirmedAt <= this.boundMs &&
      this.node === this.deps.primary()
    );
  }

  /** Tells the other instances (after the change committed); sent at once, in order. */
  publish(tables: readonly string[], tags: readonly string[] = []): void {
    if (this.closed || (tables.length === 0 && tags.length === 0)) return;
    for (const t of tables) this.pendingTables.add(t);
    for (const t of tags) this.pendingTags.add(t);
    if (this.pendingTables.size + this.pendingTags.size > MAX_PENDING) {
      this.pendingTables.clear();
      this.pendingTags.clear();
      this.pendingTables.add(ALL_TABLES);
    }
    this.flush();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.discard();
  }

  private tick(): void {
    if (this.closed) return;
    const primary = this.deps.primary();
    if (this.client && this.node !== primary) this.discard(); // a failover: follow the primary
    if (!this.client) {
      if (primary && !this.connecting) {
        this.connecting = this.connect(primary)
          .catch(() => this.discard())
          .finally(() => {
            this.connecting = undefined;
          });
      }
      return;
    }
    if (this.beating) {
      // No answer for twice the bound: the connection is as good as dead.
      if (this.confirmedAt !== undefined && performance.now() - this.confirmedAt > 2 * this.boundMs)
        this.discard();
      return;
    }
    const client = this.client;
    const sentAt = performance.now();
    this.beating = true;
    client.query('SELECT 1').then(
      () => {
        this.beating = false;
        // Every notification sent before this statement reached the server came before its answer.
        if (this.client === client) this.confirmedAt = sentAt;
      },
      () => {
        this.beating = false;
        if (this.client === client) this.discard();
      },
    );
  }

  private async connect(node: ClusterNode): Promise<void> {
    const options = this.deps.connectionOptions(node);
    const client = new pg.Client({
      ...options,
      connectionTimeoutMillis: this.deps.connectTimeoutMs,
      application_name: `${this.deps.applicationName}:cache`,
    });
    client.on('error', () => {
      if (this.client === client) this.discard();
    });
    client.on('end', () => {
      if (this.client === client) this.discard();
    });
    client.on('notification', (message) => {
      if (this.client === client && message.channel === this.channel) this.receive(message.payload);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        client.connect((err?: Error) => (err ? reject(err) : resolve()));
      });
    } catch (err) {
      destroy(client);
      throw err;
    } finally {
      forgetPassword(client, options.password);
    }
    if (this.closed) {
      destroy(client);
      return;
    }
    setRef(client, false);
    const sentAt = performance.now();
    try {
      await client.query(`LISTEN ${quoteIdent(this.channel)}`);
    } catch (err) {
      destroy(client);
      throw err;
    }
    if (this.closed) {
      destroy(client);
      return;
    }
    this.client = client;
    this.node = node;
    this.confirmedAt = sentAt;
    this.subscriptions++;
    // Whatever changed while no subscription was up went unheard: nothing older can be trusted.
    this.deps.resubscribed();
    this.flush();
  }

  private receive(payload: string | undefined): void {
    let message: Message;
    try {
      message = JSON.parse(payload ?? '') as Message;
    } catch {
      this.heard++;
      this.deps.received([ALL_TABLES], []); // unreadable: the safe reading
      return;
    }
    if (message.i === this.id) return;
    this.heard++;
    const tables = Array.isArray(message.t) ? message.t.filter(isString) : [];
    const tags = Array.isArray(message.g) ? message.g.filter(isString) : [];
    if (tables.length > 0 || tags.length > 0) this.deps.received(tables, tags);
  }

  private flush(): void {
    if (this.flushing || !this.client) return;
    if (this.pendingTables.size === 0 && this.pendingTags.size === 0) return;
    const client = this.client;
    const tables = [...this.pendingTables];
    const tags = [...this.pendingTags];
    this.pendingTables.clear();
    this.pendingTags.clear();
    const payloads = encode(this.id, tables, tags);
    this.busy++;
    setRef(client, true); // a process that just wrote should not exit before it told the others
    this.flushing = (async () => {
      try {
        for (const payload of payloads) {
          await client.query('SELECT pg_notify($1, $2)', [this.channel, payload]);
          this.sent++;
        }
      } catch {
        // Sent again on the next subscription (others that missed it see a resubscription too).
        for (const t of tables) this.pendingTables.add(t);
        for (const t of tags) this.pendingTags.add(t);
        if (this.client === client) this.discard();
      } finally {
        this.busy--;
        if (this.busy === 0 && this.client === client) setRef(client, false);
      }
    })().finally(() => {
      this.flushing = undefined;
      this.flush();
    });
  }

  private discard(): void {
    const client = this.client;
    this.client = undefined;
    this.node = undefined;
    this.confirmedAt = undefined;
    this.beating = false;
    if (client) destroy(client);
  }
}

/**
 * The change as NOTIFY payloads under the size limit: names split over a few messages, or one
 * "drop everything" when that would take too many (the receiver drops more, never less).
 */
export function encode(id: string, tables: readonly string[], tags: readonly string[]): string[] {
  if (tables.includes(ALL_TABLES)) return [JSON.stringify({ i: id, t: [ALL_TABLES] })];
  const whole = JSON.stringify({ i: id, t: tables, g: tags });
  if (Buffer.byteLength(whole) <= PAYLOAD_BUDGET) return [whole];
  const out: string[] = [];
  let t: string[] = [];
  let g: string[] = [];
  let size = Buffer.byteLength(JSON.stringify({ i: id, t: [], g: [] }));
  const base = size;
  const push = () => {
    out.push(JSON.stringify({ i: id, t, g }));
    t = [];
    g = [];
    size = base;
  };
  for (const [name, list] of [
    ...tables.map((n) => [n, 't'] as const),
    ...tags.map((n) => [n, 'g'] as const),
  ]) {
    const bytes = Buffer.byteLength(JSON.stringify(name)) + 1;
    if (base + bytes > PAYLOAD_BUDGET) return [JSON.stringify({ i: id, t: [ALL_TABLES] })];
    if (size + bytes > PAYLOAD_BUDGET) push();
    (list === 't' ? t : g).push(name);
    size += bytes;
  }
  if (t.length > 0 || g.length > 0) push();
  return out.length > MAX_CHUNKS ? [JSON.stringify({ i: id, t: [ALL_TABLES] })] : out;
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function setRef(client: pg.Client, ref: boolean): void {
  const stream = (
    client as unknown as { connection?: { stream?: { ref?(): void; unref?(): void } } }
  ).connection?.stream;
  if (ref) stream?.ref?.();
  else stream?.unref?.();
}

function destroy(client: pg.Client): void {
  // end() waits for the server, which may never answer; destroy the socket instead.
  (
    client as unknown as { connection?: { stream?: { destroy(): void } } }
  ).connection?.stream?.destroy();
  client.end().catch(() => {});
}
