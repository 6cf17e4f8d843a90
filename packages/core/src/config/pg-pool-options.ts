import pg from 'pg';
import { ConfigError, type ConfigIssue } from '../errors/index.js';
import type { NodeOptions } from './node-types.js';
import { isClientConstructor, suggest } from './schema.js';
import { PG_CLIENT_SETTING_FIELDS, parseOptions } from './server-settings.js';
import type { PgPulseConfig, PoolOptions } from './types.js';

/** What a set-up hook is handed: the connection's face (a client from `pool.connect()`). */
export interface SetupClient {
  query(...args: never[]): unknown;
}

/** Runs on every new physical connection before its first use; a rejection fails that connect. */
export type ConnectionSetup = (client: SetupClient) => void | Promise<void>;

/** What pg.Pool's options become: a pgpulse config plus the hooks pg.Pool runs itself. */
export interface PgPoolMapping {
  readonly config: PgPulseConfig;
  /** pg-pool's `onConnect`, and `verify` in its callback form, in that order. */
  readonly setup: readonly ConnectionSetup[];
  /** pg-pool's `log(message, ...details)` debug logger. */
  readonly log?: (message: string, ...details: unknown[]) => void;
}

type Options = Readonly<Record<string, unknown>>;

/** Connection fields that name the server; they become the primary node. */
const NODE_FIELDS = ['host', 'port', 'user', 'password', 'database', 'ssl'] as const;

/**
 * pg.Pool options a pgpulse cluster cannot honour yet, with why. Refused rather than dropped,
 * because each changes what a statement does or sees.
 */
const REFUSED: Readonly<Record<string, string>> = {
  query_timeout: 'a per-statement deadline is not supported yet (issue #22)',
  types: 'custom type parsers are not applied to pgpulse connections; use pg.types.setTypeParser',
  client_encoding: 'pgpulse connections always use UTF8',
  stream: 'pgpulse opens its own sockets to every node; a custom stream cannot be routed',
  parseInputDatesAsUTC: 'not applied to pgpulse connections',
  replication: 'replication connections cannot be pooled or routed',
  fallback_application_name: 'use applicationName (sent as application_name) instead',
};

/** Accepted as pg.Pool takes them; comments say what each becomes. */
const KNOWN = [
  ...NODE_FIELDS,
  'connectionString',
  'application_name',
  // Server settings: sent at connect as the config's settings, as pg sends them.
  ...PG_CLIENT_SETTING_FIELDS,
  'options',
  'max',
  'poolSize',
  'min',
  'idleTimeoutMillis',
  'connectionTimeoutMillis',
  'maxLifetimeSeconds',
  'maxUses',
  'allowExitOnIdle',
  'keepAlive',
  'keepAliveInitialDelayMillis',
  'onConnect',
  'verify',
  'log',
  'Client',
  'binary',
  'pipeline',
  'Promise',
] as const;

/**
 * Maps pg.Pool's options (pg-pool 3.x) to a pgpulse config. Every option is either given its
 * pgpulse meaning or refused with a ConfigError that says why; none is ignored. `base` supplies
 * what the options leave out (usually the replicas, or the whole cluster when the options name
 * no server).
 */
export function fromPgPoolOptions(
  options: Options,
  base: Partial<PgPulseConfig> = {},
): PgPoolMapping {
  const issues: ConfigIssue[] = [];
  const refuse = (field: string, message: string): void => {
    issues.push({ field, message });
  };
  for (const key of Object.keys(options)) {
    if (options[key] === undefined) continue;
    const why = REFUSED[key];
    if (why !== undefined) refuse(key, `pg.Pool option not supported by pgpulse: ${why}`);
    else if (!(KNOWN as readonly string[]).includes(key)) {
      const close = suggest(key, [...KNOWN]);
      refuse(key, `unknown pg.Pool option${close ? ` (did you mean "${close}"?)` : ''}`);
    }
  }

  const pool: PoolOptions = { ...base.pool };
  const int = (key: string, min: number): number | undefined => {
    const value = options[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      refuse(key, `must be a whole number >= ${min} (got ${String(value)})`);
      return undefined;
    }
    return value;
  };
  const max = int('max', 1) ?? int('poolSize', 1);
  if (max !== undefined) pool.maxSize = max;
  const min = int('min', 0);
  if (min !== undefined) pool.minSize = min;
  // pg's min keeps idle clients; it never opens one ahead of a statement.
  pool.warm = false;
  // pg: 0 means never; so does pgpulse's idleTimeoutMs.
  // pg's default is 10 s (pgpulse's 30 s): a pg.Pool user expects pg's.
  pool.idleTimeoutMs = int('idleTimeoutMillis', 0) ?? 10_000;
  // pg: 0 (its default) means wait forever. pgpulse always bounds a wait (a silent node must
  // not hold a caller forever), so 0 keeps pgpulse's own limits.
  const timeout = int('connectionTimeoutMillis', 0);
  let health = base.health;
  if (timeout !== undefined && timeout > 0) {
    pool.acquireTimeoutMs = timeout;
    pool.connectTimeoutMs = timeout;
    // The first statement waits for the first health round; a silent server must not hold it
    // longer than the connection timeout the user asked for.
    health = { ...health, timeoutMs: Math.min(health?.timeoutMs ?? 1_000, timeout) };
  }
  const lifetime = int('maxLifetimeSeconds', 0);
  if (lifetime !== undefined) {
    pool.recycleSeconds = lifetime;
    // pg ends a connection at exactly its lifetime; spreading it would break that promise.
    pool.recycleJitter = 0;
  }
  const maxUses = int('maxUses', 1);
  if (maxUses !== undefined) pool.maxUses = maxUses;
  // pg.Pool's default keeps idle clients holding the process until their idle timeout.
  pool.exitOnIdle = options.allowExitOnIdle === true;
  for (const key of ['allowExitOnIdle', 'keepAlive'] as const) {
    const value = options[key];
    if (value !== undefined && typeof value !== 'boolean') refuse(key, 'must be true or false');
  }
  if (options.keepAlive === false) {
    refuse('keepAlive', 'pgpulse keeps TCP keep-alive on so that a dead node is noticed');
  }
  const Client = options.Client;
  if (Client !== undefined && Client !== pg.Client) {
    // pg.Pool's Client opens the application's connections (probes keep pg.Client): a class
    // extending pg.Client, or a look-alike checked once it connects (connections.ts).
    if (isClientConstructor(Client)) pool.Client = Client;
    else
      refuse(
        'Client',
        "must be pg.Client, a class extending it or a constructor whose instances carry pg's protocol stream (client.connection): pgpulse follows each connection's protocol messages (transaction status, reported settings) to keep a connection left inside a transaction from the next caller, and pg.native has none",
      );
  }
  if (options.binary !== undefined) {
    if (typeof options.binary === 'boolean') pool.binary = options.binary;
    else refuse('binary', 'must be true or false');
  }
  if (options.pipeline !== undefined) {
    if (typeof options.pipeline === 'boolean') pool.pipeline = options.pipeline;
    else refuse('pipeline', 'must be true or false');
  }
  if (options.Promise !== undefined && options.Promise !== Promise) {
    refuse('Promise', 'pgpulse returns native Promises; a custom Promise library is not supported');
  }

  const setup: ConnectionSetup[] = [];
  const onConnect = options.onConnect;
  if (onConnect !== undefined) {
    if (typeof onConnect === 'function') setup.push(onConnect as ConnectionSetup);
    else refuse('onConnect', 'must be a function (client) => void | Promise<void>');
  }
  const verify = options.verify;
  if (verify !== undefined) {
    if (typeof verify === 'function') {
      const check = verify as (client: SetupClient, done: (err?: unknown) => void) => void;
      setup.push(
        (client) =>
          new Promise<void>((resolve, reject) => {
            check(client, (err?: unknown) => (err ? reject(err) : resolve()));
          }),
      );
    } else refuse('verify', 'must be a function (client, callback) => void');
  }
  const log = options.log;
  if (log !== undefined && typeof log !== 'function') refuse('log', 'must be a function');

  const settings: Record<string, string | number | boolean> = { ...base.settings };
  if (options.options !== undefined) {
    const parsed = typeof options.options === 'string' ? parseOptions(options.options) : undefined;
    if (parsed?.ok === true) Object.assign(settings, parsed.settings);
    else refuse('options', parsed?.reason ?? "must be a string like '-c statement_timeout=5s'");
  }
  for (const key of PG_CLIENT_SETTING_FIELDS) {
    const value = options[key];
    if (value === undefined) continue;
    // pg: 0 (or false) means no timeout, and sends nothing; the server's 0 means the same.
    if (value === false) settings[key] = 0;
    else if (typeof value === 'number' && Number.isInteger(value) && value >= 0)
      settings[key] = value;
    else refuse(key, `must be a whole number of milliseconds >= 0 (got ${String(value)})`);
  }

  const config: PgPulseConfig = {
    ...base,
    ...(Object.keys(settings).length > 0 ? { settings } : {}),
    ...(health ? { health } : {}),
    primary: primaryOf(options, base),
    ...(typeof options.application_name === 'string'
      ? { applicationName: options.application_name }
      : {}),
    pool,
  };
  if (issues.length > 0) throw new ConfigError(issues);
  return {
    config,
    setup,
    ...(typeof log === 'function' ? { log: log as PgPoolMapping['log'] & object } : {}),
  };
}

/** The options' own server, when they name one; else the base's primary. */
function primaryOf(options: Options, base: Partial<PgPulseConfig>): PgPulseConfig['primary'] {
  if (typeof options.connectionString === 'string') return options.connectionString;
  const named = NODE_FIELDS.some((key) => options[key] !== undefined);
  if (!named && base.primary !== undefined) return base.primary;
  const node: NodeOptions = { host: typeof options.host === 'string' ? options.host : 'localhost' };
  if (typeof options.port === 'number') node.port = options.port;
  else if (typeof options.port === 'string') node.port = Number(options.port);
  if (typeof options.user === 'string') node.user = options.user;
  if (typeof options.password === 'string') node.password = options.password;
  if (typeof options.database === 'string') node.database = options.database;
  if (options.ssl !== undefined) node.ssl = options.ssl as NodeOptions['ssl'] & object;
  return node;
}
