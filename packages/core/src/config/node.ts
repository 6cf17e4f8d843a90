import type { ConnectionOptions } from 'node:tls';
import type { InspectOptions } from 'node:util';
import { describeNode, type NodeRole } from '../errors/index.js';
import { type PasswordSource, passwordSource } from './credentials.js';
import type { PoolerMode, SslOption } from './node-types.js';
import type { NodeConfig } from './resolved-types.js';
import { formatOptions, type ServerSettings } from './server-settings.js';

export const DEFAULT_PORT = 5432;
export const DEFAULT_HOST = 'localhost';
export const DEFAULT_USER = 'postgres';
/** What a password or a TLS secret is shown as. */
export const MASK = '***';

/** Everything needed to build a node; `createNodeConfig` fills the rest. */
export interface NodeConfigInit {
  readonly name: string;
  readonly role: NodeRole;
  readonly host?: string;
  readonly port?: number;
  readonly database?: string;
  readonly user?: string;
  readonly password?: string;
  readonly ssl?: SslOption;
  readonly weight?: number;
  readonly settings?: ServerSettings;
  readonly pooler?: PoolerMode;
}

const inspectCustom = Symbol.for('nodejs.util.inspect.custom');

/**
 * The concrete NodeConfig. The password and TLS options live in private fields behind getters:
 * private fields are invisible to Object.keys, spread, JSON.stringify, structuredClone and
 * util.inspect even with `showHidden` (which `%o` in console.log turns on), and a
 * non-enumerable property would not be.
 */
class RedactedNodeConfig implements NodeConfig {
  readonly name: string;
  readonly role: NodeRole;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly weight: number;
  readonly settings: ServerSettings;
  readonly pooler: PoolerMode;
  readonly #password: string | undefined;
  readonly #ssl: SslOption | undefined;

  constructor(init: NodeConfigInit) {
    this.name = init.name;
    this.role = init.role;
    this.host = init.host ?? DEFAULT_HOST;
    this.port = init.port ?? DEFAULT_PORT;
    this.user = init.user ?? DEFAULT_USER;
    this.database = init.database ?? this.user;
    this.weight = init.weight ?? 1;
    this.settings = Object.freeze({ ...init.settings });
    this.pooler = init.pooler ?? 'none';
    this.#password = init.password;
    this.#ssl = init.ssl;
    Object.freeze(this);
  }

  get password(): string | undefined {
    return this.#password;
  }

  get ssl(): SslOption | undefined {
    return this.#ssl;
  }

  toJSON(): Record<string, unknown> {
    const shown: Record<string, unknown> = {
      name: this.name,
      role: this.role,
      host: this.host,
      port: this.port,
      database: this.database,
      user: this.user,
    };
    if (this.#password !== undefined) shown.password = MASK;
    if (this.#ssl !== undefined) shown.ssl = redactSsl(this.#ssl);
    shown.weight = this.weight;
    if (Object.keys(this.settings).length > 0) shown.settings = this.settings;
    if (this.pooler !== 'none') shown.pooler = this.pooler;
    return shown;
  }

  toString(): string {
    return describeNode(this);
  }

  [inspectCustom](
    depth: number,
    options: InspectOptions,
    inspect: (value: unknown, options?: InspectOptions) => string,
  ): string {
    if (depth < 0) return `[NodeConfig ${this.name}]`;
    return `NodeConfig ${inspect(this.toJSON(), { ...options, depth: options.depth == null ? null : options.depth - 1 })}`;
  }
}

/**
 * Build a NodeConfig that keeps its credentials out of logs. For nodes that do not come from
 * parseConfig, e.g. a primary discovered or named at failover time.
 */
export function createNodeConfig(init: NodeConfigInit): NodeConfig {
  return new RedactedNodeConfig(init);
}

const SECRET_TLS_KEY = /key|pass|pfx|secret/i;

function redactSsl(ssl: SslOption): unknown {
  if (typeof ssl === 'boolean') return ssl;
  const shown: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(ssl)) {
    if (SECRET_TLS_KEY.test(key)) {
      shown[key] = MASK;
    } else if (typeof value === 'string' || Buffer.isBuffer(value)) {
      // Certificates are public but long; a length keeps logs readable and still diffable.
      shown[key] =
        value.length > 64
          ? `[${value.length} ${typeof value === 'string' ? 'chars' : 'bytes'}]`
          : value;
    } else {
      shown[key] = value;
    }
  }
  return shown;
}

/** Options for `new pg.Pool(...)` / `new pg.Client(...)`. */
export interface NodeConnectionOptions {
  host: string;
  port: number;
  database: string;
  user: string;
  /** A closure (pg calls it when authenticating): no inspection form can reach the value. */
  password?: PasswordSource;
  ssl?: SslOption;
  application_name?: string;
  /** libpq `options`: the node's settings as `-c name=value`. */
  options?: string;
}

/**
 * Connection options for pg. `extra` is merged in (e.g. `{ max, connectionTimeoutMillis }`).
 * The password is a closure; after a pg.Client connects, call `forgetPassword(client, source)`
 * because pg stores the string it got on the client while authenticating.
 */
export function nodeConnectionOptions<E extends object = Record<never, never>>(
  node: NodeConfig,
  extra?: E,
): NodeConnectionOptions & E {
  const options: NodeConnectionOptions = {
    host: node.host,
    port: node.port,
    database: node.database,
    user: node.user,
    ...extra,
  };
  // application_name goes in the start-up packet, where it overrides `-c application_name`.
  const { application_name: applicationName, ...settings } = node.settings ?? {};
  if (applicationName !== undefined) options.application_name = String(applicationName);
  const serverOptions = formatOptions(settings);
  if (serverOptions !== undefined) options.options = serverOptions;
  const ssl = node.ssl;
  if (ssl !== undefined) options.ssl = typeof ssl === 'boolean' ? ssl : tlsOptionsForPg(ssl);
  if (node.password !== undefined) options.password = passwordSource(node.password);
  return options as NodeConnectionOptions & E;
}

/**
 * A fresh copy per pool: pg-pool redefines `ssl.key` on the object it is given, which would
 * throw on a frozen object and would mutate the shared config otherwise. `key` is hidden the
 * same way pg-pool hides it (pg reads it explicitly); `passphrase`/`pfx` must stay enumerable
 * because pg copies TLS options with Object.assign.
 */
function tlsOptionsForPg(ssl: ConnectionOptions): ConnectionOptions {
  const copy: ConnectionOptions = { ...ssl };
  if ('key' in ssl) {
    Object.defineProperty(copy, 'key', {
      value: ssl.key,
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}
