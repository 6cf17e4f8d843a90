import {
  type Cluster,
  ConfigError,
  type ConfigIssue,
  PG_CLIENT_SETTING_FIELDS,
  parseServerOptions,
} from '@pgpulse/core';
import type { DataSourceOptions, ReplicationMode } from 'typeorm';

// The options a pgpulse DataSource takes, and the checks that refuse what the cluster owns.

/** TypeORM's options for its `postgres` driver. */
export type PostgresDataSourceOptions = Extract<DataSourceOptions, { type: 'postgres' }>;

/**
 * Settings that describe connections. The cluster owns connections (its nodes, pool sizes,
 * timeouts, TLS, application_name), so these are refused rather than silently ignored.
 */
const CONNECTION_FIELDS = [
  'url',
  'host',
  'port',
  'username',
  'password',
  'database',
  'ssl',
  'applicationName',
  'poolSize',
  'connectTimeoutMS',
  'extra',
  'driver',
  'nativeDriver',
] as const;
type ConnectionField = (typeof CONNECTION_FIELDS)[number];

/**
 * Your TypeORM postgres options without the connection settings (those come from the cluster).
 * `replication` only keeps `defaultMode`: 'slave' (TypeORM's default) sends query builders and
 * `find*` through the SQL-routed pool, 'master' sends them to the primary.
 */
export type PgPulseTypeOrmOptions = Omit<
  PostgresDataSourceOptions,
  ConnectionField | 'type' | 'replication'
> & {
  readonly type?: 'postgres';
  readonly replication?: { readonly defaultMode?: ReplicationMode };
  /**
   * Server settings as pg.Client takes them. They hold when every node of the cluster already
   * sends the same value (its `settings`); otherwise a ConfigError says where they go.
   */
  readonly extra?: {
    readonly statement_timeout?: number | string;
    readonly lock_timeout?: number | string;
    readonly idle_in_transaction_session_timeout?: number | string;
    readonly options?: string;
  };
};

function serverSettingsOnly(extra: unknown): boolean {
  if (extra === null || typeof extra !== 'object') return false;
  return Object.keys(extra).every(
    (key) => (PG_CLIENT_SETTING_FIELDS as readonly string[]).includes(key) || key === 'options',
  );
}

/**
 * `extra: { statement_timeout }` (and the other server settings, or `options`) holds when
 * every node of the cluster already sends that value at connect: the cluster's connections are
 * shared, so the DataSource cannot give them settings of its own. Otherwise the issue says
 * where the setting goes.
 */
function extraSettingsIssues(
  cluster: Cluster,
  extra: Readonly<Record<string, unknown>>,
): ConfigIssue[] {
  const wanted: Record<string, string> = {};
  for (const key of PG_CLIENT_SETTING_FIELDS) {
    if (extra[key] !== undefined) wanted[key] = String(extra[key]);
  }
  const issues: ConfigIssue[] = [];
  if (extra.options !== undefined) {
    const parsed =
      typeof extra.options === 'string' ? parseServerOptions(extra.options) : undefined;
    if (parsed?.ok === true) Object.assign(wanted, parsed.settings);
    else {
      issues.push({
        field: 'typeorm.extra.options',
        message: parsed?.reason ?? "must be a string like '-c statement_timeout=5s'",
      });
    }
  }
  const nodes = [cluster.config.primary, ...cluster.config.replicas];
  for (const [name, value] of Object.entries(wanted)) {
    const missing = nodes.filter((node) => String(node.settings[name] ?? '') !== value);
    if (missing.length === 0) continue;
    issues.push({
      field: `typeorm.extra.${name}`,
      message: `the cluster's connections are shared and ${missing.map((n) => n.name).join(', ')} do not send ${name}=${value}: set it where the connections are made, createCluster({ settings: { ${name}: ${JSON.stringify(value)} } }) (or a node's own settings, or ?options=-c%20${name}%3D${encodeURIComponent(value)} in its URL); extra may then repeat it`,
    });
  }
  return issues;
}

export function checkOptions(cluster: Cluster, options: PgPulseTypeOrmOptions): void {
  const given = options as Readonly<Record<string, unknown>>;
  const issues: ConfigIssue[] = [];
  for (const field of CONNECTION_FIELDS) {
    if (field === 'extra' && given.extra !== undefined && serverSettingsOnly(given.extra)) {
      issues.push(
        ...extraSettingsIssues(cluster, given.extra as Readonly<Record<string, unknown>>),
      );
      continue;
    }
    if (given[field] !== undefined) {
      issues.push({
        field: `typeorm.${field}`,
        message:
          field === 'extra'
            ? "connections come from the cluster: server settings such as statement_timeout go in createCluster({ settings: { statement_timeout: '5s' } }) (or a node's own settings), pool sizes in createCluster({ pool }); remove extra from the TypeORM options"
            : 'connections come from the cluster (createCluster({ primary, replicas, pool })); remove it from the TypeORM options',
      });
    }
  }
  if (given.type !== undefined && given.type !== 'postgres') {
    issues.push({ field: 'typeorm.type', message: "must be 'postgres' (or left out)" });
  }
  const replication = given.replication as Readonly<Record<string, unknown>> | undefined;
  for (const field of ['master', 'slaves'] as const) {
    if (replication?.[field] !== undefined) {
      issues.push({
        field: `typeorm.replication.${field}`,
        message:
          'the primary and replicas are the cluster’s nodes; keep only replication.defaultMode',
      });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
}
