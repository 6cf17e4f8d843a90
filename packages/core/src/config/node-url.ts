import { DEFAULT_HOST, DEFAULT_PORT, MASK } from './node.js';
import type { SslOption } from './node-types.js';
import { PG_CLIENT_SETTING_FIELDS, parseOptions } from './server-settings.js';

// Connection URLs: parsing one into a node's fields, and masking the password of one.

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
