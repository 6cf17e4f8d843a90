import type { ConnectionOptions } from 'node:tls';
import type { InspectOptions } from 'node:util';
import { describeNode, type NodeRole } from '../errors/index.js';
import { type PasswordSource, passwordSource } from './credentials.js';
import {
  formatOptions,
  PG_CLIENT_SETTING_FIELDS,
  parseOptions,
  type ServerSettings,
} from './server-settings.js';
import type { NodeConfig, PoolerMode, SslOption } from './types.js';

export const DEFAULT_PORT = 5432;
export const DEFAULT_HOST = 'localhost';
export const DEFAULT_USER = 'postgres';
const MASK = '***';

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

// ---------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------

const PASSWORD_PARAM = /(\b(?:ssl)?password\s*=\s*)('[^']*'|[^&#\s]*)/gi;

/**
 * Mask the password of a connection URL (`postgres://user:***@host/db`), including a
 * `password=` parameter. Also safe on strings that do not parse as URLs (and on libpq
 * `key=value` strings): when in doubt it masks more, never less.
 */
export function redactUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  // An '@' after the authority means the parser and the author disagree about where the
  // password ends (e.g. an unencoded '/' in it): fall back to masking up to the last '@'.
  if (parsed !== undefined && !`${parsed.pathname}${parsed.search}${parsed.hash}`.includes('@')) {
    if (parsed.password !== '') parsed.password = MASK;
    for (const key of [...parsed.searchParams.keys()]) {
      if (/^(ssl)?password$/i.test(key)) parsed.searchParams.set(key, MASK);
    }
    return parsed.toString();
  }
  return maskUserinfoLoosely(url).replace(PASSWORD_PARAM, `$1${MASK}`);
}

function maskUserinfoLoosely(text: string): string {
  const schemeEnd = text.indexOf('://');
  const start = schemeEnd === -1 ? 0 : schemeEnd + 3;
  const rest = text.slice(start);
  // The last '@' ends the userinfo: an unencoded '@' inside a password is common.
  const at = rest.lastIndexOf('@');
  if (at === -1) return text;
  const colon = rest.indexOf(':');
  if (colon === -1 || colon > at) return text;
  return `${text.slice(0, start)}${rest.slice(0, colon)}:${MASK}${rest.slice(at)}`;
}

/** What a URL contributes to a node. */
export interface UrlNodeFields {
  host: string;
  port: number;
  database?: string;
  user?: string;
  password?: string;
  ssl?: SslOption;
  settings?: Record<string, string>;
}

const URL_PARAMS = [
  'sslmode',
  'ssl',
  'host',
  'port',
  'user',
  'password',
  'dbname',
  'options',
  'application_name',
  // pg takes these from the URL and sends them at connect, as pgpulse does.
  ...PG_CLIENT_SETTING_FIELDS,
] as const;
const PARAM_HINTS: Readonly<Record<string, string>> = {
  connect_timeout: 'use pool.connectTimeoutMs',
  sslrootcert: 'use the object form with ssl: { ca: readFileSync(...) }',
  sslcert: 'use the object form with ssl: { cert: readFileSync(...) }',
  sslkey: 'use the object form with ssl: { key: readFileSync(...) }',
};

/** A server duration as pg sends it from a URL: milliseconds, or a number with a unit. */
const DURATION = /^\d+(?:us|ms|s|min|h|d)?$/;

const SSLMODES: Readonly<Record<string, SslOption | undefined>> = {
  disable: false,
  // libpq's allow/prefer fall back to plaintext; pg cannot, so they mean "pg's default".
  allow: undefined,
  prefer: undefined,
  require: true,
  'verify-ca': true,
  'verify-full': true,
  'no-verify': { rejectUnauthorized: false },
};

/**
 * Parse a postgres:// URL. Returns the reason on failure; the reason never contains the
 * password, so the caller may show it.
 */
export function parseNodeUrl(
  url: string,
): { ok: true; fields: UrlNodeFields } | { ok: false; reason: string } {
  const fail = (reason: string) => ({ ok: false as const, reason });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    if (!url.includes('://') && /\w+\s*=/.test(url)) {
      return fail(
        "libpq 'key=value' strings are not supported; use a postgres:// URL or the object form",
      );
    }
    return fail(
      'it does not parse; percent-encode special characters (@ : / ? # %) in the user name and password',
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    return fail('it must start with postgres:// or postgresql://');
  }
  if (!url.slice(parsed.protocol.length).startsWith('//')) {
    return fail('expected postgres://host/database');
  }
  if (parsed.hash !== '') {
    return fail("it has a '#' fragment; percent-encode '#' in the password as %23");
  }

  let user: string;
  let password: string;
  let database: string;
  let host: string;
  try {
    user = decodeURIComponent(parsed.username);
    password = decodeURIComponent(parsed.password);
    database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
    host = decodeURIComponent(parsed.hostname);
  } catch {
    return fail('it contains a malformed %-escape (percent-encode % itself as %25)');
  }
  // WHATWG keeps brackets around IPv6 literals; net.connect wants them bare.
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  let port = parsed.port === '' ? DEFAULT_PORT : Number(parsed.port);
  let ssl: SslOption | undefined;
  let sslmode: string | undefined;
  let settings: Record<string, string> | undefined;

  for (const [key, value] of parsed.searchParams) {
    switch (key as (typeof URL_PARAMS)[number]) {
      case 'sslmode':
        sslmode = value;
        break;
      case 'ssl':
        if (value === 'true' || value === '1') ssl = true;
        else if (value === 'false' || value === '0') ssl = false;
        else return fail(`ssl must be true or false (got '${value}')`);
        break;
      case 'host':
        host = value;
        break;
      case 'port':
        port = /^\d+$/.test(value) ? Number(value) : Number.NaN;
        break;
      case 'user':
        user = value;
        break;
      case 'password':
        password = value;
        break;
      case 'dbname':
        database = value;
        break;
      case 'options': {
        const options = parseOptions(value);
        if (!options.ok) return fail(options.reason);
        settings = { ...settings, ...options.settings };
        break;
      }
      case 'application_name':
        settings = { ...settings, application_name: value };
        break;
      default: {
        if ((PG_CLIENT_SETTING_FIELDS as readonly string[]).includes(key)) {
          if (!DURATION.test(value)) {
            return fail(`${key} must be milliseconds or a duration like 5s (got '${value}')`);
          }
          settings = { ...settings, [key]: value };
          break;
        }
        const hint =
          PARAM_HINTS[key] ??
          `supported: ${URL_PARAMS.join(', ')}; use the object form for other settings`;
        return fail(`unsupported parameter '${key}' (${hint})`);
      }
    }
  }
  if (sslmode !== undefined) {
    if (!Object.hasOwn(SSLMODES, sslmode)) {
      return fail(`sslmode must be one of ${Object.keys(SSLMODES).join(', ')} (got '${sslmode}')`);
    }
    ssl = SSLMODES[sslmode];
  }
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    return fail('the port must be an integer between 1 and 65535');
  }

  const fields: UrlNodeFields = { host: host === '' ? DEFAULT_HOST : host, port };
  if (database !== '') fields.database = database;
  if (user !== '') fields.user = user;
  if (password !== '') fields.password = password;
  if (ssl !== undefined) fields.ssl = ssl;
  if (settings !== undefined) fields.settings = settings;
  return { ok: true, fields };
}
