import { ConfigError, type ConfigIssue } from '../errors/index.js';

/**
 * libpq's conventions for describing a set of servers, turned into pgpulse's config before it
 * is validated:
 * - a multi-host URL, `postgres://user:pw@h1:5432,h2:5432,h3/db?target_session_attrs=...`,
 *   given as `primary` without `replicas`: every host becomes a node. The first is listed as
 *   the primary, but roles are what the probes find (the writable node is the primary, a
 *   standby serves reads), as after a failover;
 * - `target_session_attrs` (`any`, `prefer-standby`: the default; `read-write`, `primary`:
 *   everything on the primary; `standby`, `read-only`: reads never fall back to the primary)
 *   and `load_balance_hosts=random` (pgpulse always spreads reads over healthy standbys);
 * - the standard environment variables (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
 *   PGSSLMODE, PGTARGETSESSIONATTRS, PGLOADBALANCEHOSTS, PGAPPNAME) when no `primary` is given.
 */
export type Environment = Readonly<Record<string, string | undefined>>;

type Input = Record<string, unknown>;

const SESSION_ATTRS: Readonly<Record<string, Input>> = {
  any: {},
  'prefer-standby': {},
  'read-write': { readWriteSplit: false },
  primary: { readWriteSplit: false },
  standby: { replicaLag: { policy: 'error' } },
  'read-only': { replicaLag: { policy: 'error' } },
};

/** Returns `input` with libpq's forms expanded; anything else is returned as it is. */
export function applyLibpqConventions(input: unknown, env: Environment = process.env): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  let config = input as Input;
  if (config.primary === undefined) {
    const fromEnv = urlFromEnvironment(env);
    if (fromEnv === undefined) return input;
    config = {
      ...config,
      primary: fromEnv,
      ...(config.applicationName === undefined && env.PGAPPNAME
        ? { applicationName: env.PGAPPNAME }
        : {}),
    };
  }
  if (typeof config.primary !== 'string') return config;
  const split = splitHosts(config.primary);
  if (split === undefined) return config;
  const issues: ConfigIssue[] = [];
  if (config.replicas !== undefined) {
    issues.push({
      field: 'replicas',
      message:
        'a multi-host primary URL already lists every node (the probes find which is the primary); give either it or replicas',
    });
  }
  const overrides: Input[] = [];
  for (const [key, value] of split.params) {
    if (key === 'target_session_attrs') {
      const mapped = SESSION_ATTRS[value];
      if (mapped === undefined) {
        issues.push({
          field: 'primary',
          message: `target_session_attrs must be one of ${Object.keys(SESSION_ATTRS).join(', ')} (got '${value}')`,
        });
      } else overrides.push(mapped);
    } else if (key === 'load_balance_hosts') {
      if (value !== 'random' && value !== 'disable') {
        issues.push({
          field: 'primary',
          message: `load_balance_hosts must be random or disable (got '${value}')`,
        });
      } else if (value === 'disable') {
        issues.push({
          field: 'primary',
          message:
            "load_balance_hosts=disable (try hosts in order) has no pgpulse meaning: reads are spread over every healthy standby; to prefer one, give replicas with weights and loadBalancing: 'weighted'",
        });
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  const [first, ...rest] = split.urls;
  let out: Input = { ...config, primary: first, replicas: rest };
  for (const override of overrides) out = merge(out, override);
  return out;
}

/** A user's explicit setting wins over what target_session_attrs implies. */
function merge(config: Input, implied: Input): Input {
  const out: Input = { ...config };
  for (const [key, value] of Object.entries(implied)) {
    const mine = config[key];
    if (mine === undefined) out[key] = value;
    else if (isObject(mine) && isObject(value)) out[key] = { ...value, ...mine };
  }
  return out;
}

function isObject(value: unknown): value is Input {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * `postgres://u:p@h1:1,h2:2/db?x=y` → one URL per host (same credentials, database and other
 * parameters), plus the cluster-level parameters taken out. undefined for a single-host URL.
 */
function splitHosts(
  url: string,
): { urls: string[]; params: [key: string, value: string][] } | undefined {
  const match = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/s.exec(url);
  if (match === null) return undefined;
  const [, scheme, authority = '', tail = ''] = match;
  // An '@' after the authority means an unencoded '/', '?' or '#' in the user name or password:
  // splitting on commas would cut inside the password and the pieces, no longer recognisably
  // a password, would be quoted in the error. Left whole, the URL fails to parse and its
  // message masks everything up to the last '@'.
  if (tail.includes('@')) return undefined;
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? '' : authority.slice(0, at + 1);
  const hosts = authority.slice(at + 1);
  if (!hosts.includes(',')) return undefined;
  const queryAt = tail.indexOf('?');
  const path = queryAt === -1 ? tail : tail.slice(0, queryAt);
  const query = new URLSearchParams(queryAt === -1 ? '' : tail.slice(queryAt + 1));
  const params: [string, string][] = [];
  for (const key of ['target_session_attrs', 'load_balance_hosts']) {
    const value = query.get(key);
    if (value !== null) params.push([key, value]);
    query.delete(key);
  }
  const rest = query.toString();
  const urls = hosts
    .split(',')
    .map((host) => `${scheme}${userinfo}${host}${path}${rest === '' ? '' : `?${rest}`}`);
  return { urls, params };
}

/** libpq's environment variables as a (possibly multi-host) URL, or undefined without PGHOST. */
function urlFromEnvironment(env: Environment): string | undefined {
  const host = env.PGHOST;
  if (!host) return undefined;
  const hosts = host.split(',');
  const ports = (env.PGPORT ?? '').split(',');
  const user = env.PGUSER ? encodeURIComponent(env.PGUSER) : '';
  const password = env.PGPASSWORD ? `:${encodeURIComponent(env.PGPASSWORD)}` : '';
  const database = env.PGDATABASE ? encodeURIComponent(env.PGDATABASE) : '';
  const query = new URLSearchParams();
  if (env.PGSSLMODE) query.set('sslmode', env.PGSSLMODE);
  if (env.PGTARGETSESSIONATTRS) query.set('target_session_attrs', env.PGTARGETSESSIONATTRS);
  if (env.PGLOADBALANCEHOSTS) query.set('load_balance_hosts', env.PGLOADBALANCEHOSTS);
  if (hosts.length === 1 && host.startsWith('/')) {
    // A unix socket directory cannot be a URL host: libpq's own `host` parameter carries it.
    query.set('host', host);
    if (ports[0]) query.set('port', ports[0]);
    if (env.PGUSER) query.set('user', env.PGUSER);
    if (env.PGPASSWORD) query.set('password', env.PGPASSWORD);
    return `postgres:///${database}?${query.toString()}`;
  }
  const authority = hosts
    .map((h, i) => {
      const port = ports.length === 1 ? ports[0] : ports[i];
      const bare = h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
      return port ? `${bare}:${port}` : bare;
    })
    .join(',');
  const userinfo = user || password ? `${user}${password}@` : '';
  const q = query.toString();
  return `postgres://${userinfo}${authority}/${database}${q === '' ? '' : `?${q}`}`;
}
