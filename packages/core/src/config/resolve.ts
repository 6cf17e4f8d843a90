import { ConfigError, type ConfigIssue } from '../errors/index.js';
import { fallbackPhrase, toConfigIssues } from './issues.js';
import { applyLibpqConventions } from './libpq.js';
import { createNodeConfig } from './node.js';
import type { NodeFields } from './node-schema.js';
import type {
  NodeConfig,
  ResolvedCacheConfig,
  ResolvedConfig,
  ResolvedMonitoringConfig,
} from './resolved-types.js';
import { cacheSchema, configSchema, monitoringSchema, type ParsedConfig } from './schema.js';
import { KNOWN_KEYS } from './schema-fields.js';

/**
 * Validate a configuration and apply every default. Throws ConfigError listing every bad
 * field at once, each with its dotted path and what it must be; no message contains a password.
 */
export function parseConfig(input: unknown): ResolvedConfig {
  const result = configSchema.safeParse(applyLibpqConventions(input), {
    reportInput: true,
    error: fallbackPhrase,
  });
  if (!result.success)
    throw new ConfigError(toConfigIssues(result.error.issues, [], { knownKeys: KNOWN_KEYS }));
  return resolve(result.data);
}

function resolve(parsed: ParsedConfig): ResolvedConfig {
  const issues: ConfigIssue[] = [];
  const nameOwners = new Map<string, string>();

  const buildNode = (
    fields: NodeFields,
    role: NodeConfig['role'],
    defaultName: string,
    field: string,
  ): NodeConfig => {
    const name = fields.name ?? defaultName;
    const owner = nameOwners.get(name);
    if (owner === undefined) {
      nameOwners.set(name, field);
    } else {
      issues.push({
        field: `${field}.name`,
        message:
          fields.name === undefined
            ? `the default name '${name}' is already used by ${owner}; give this node a distinct name`
            : `'${name}' is already used by ${owner}; node names must be unique`,
      });
    }
    return createNodeConfig({
      name,
      role,
      host: fields.host,
      port: fields.port,
      ...(fields.database === undefined ? {} : { database: fields.database }),
      ...(fields.user === undefined ? {} : { user: fields.user }),
      ...(fields.password === undefined ? {} : { password: fields.password }),
      ...(fields.ssl === undefined ? {} : { ssl: fields.ssl }),
      weight: role === 'replica' ? (fields.weight ?? 1) : 1,
      // libpq's options string first, the settings object over it; a node's own over the top.
      settings: { ...parsed.options, ...parsed.settings, ...fields.options, ...fields.settings },
      pooler: fields.pooler ?? parsed.pooler ?? 'none',
    });
  };

  const primary = buildNode(parsed.primary, 'primary', 'primary', 'primary');
  const replicas = parsed.replicas.map((replica, i) =>
    buildNode(replica, 'replica', `replica-${i + 1}`, `replicas.${i}`),
  );
  if (issues.length > 0) throw new ConfigError(issues);

  const { pool, replicaLag, routing } = parsed;
  const config: ResolvedConfig = {
    primary,
    replicas: Object.freeze(replicas),
    pool: Object.freeze({
      ...pool,
      // 0 and null both mean "never"; one spelling downstream avoids `if (!recycleSeconds)` bugs.
      recycleSeconds: pool.recycleSeconds === 0 ? null : pool.recycleSeconds,
    }),
    loadBalancing: parsed.loadBalancing,
    readWriteSplit: parsed.readWriteSplit,
    circuitBreaker: Object.freeze(parsed.circuitBreaker),
    health: Object.freeze(parsed.health),
    replicaLag: Object.freeze({
      maxLagMs: replicaLag.maxLagMs ?? null,
      maxLagBytes: replicaLag.maxLagBytes ?? null,
      policy: replicaLag.policy,
      hysteresis: replicaLag.hysteresis,
    }),
    consistency: Object.freeze(parsed.consistency),
    failover: Object.freeze({
      promotion: parsed.failover.promotion,
      writeWaitMs: parsed.failover.writeWaitMs,
      coordinator: parsed.failover.coordinator
        ? Object.freeze({
            ...parsed.failover.coordinator,
            endpoints: Object.freeze([...parsed.failover.coordinator.endpoints]),
          })
        : undefined,
    }),
    routing: Object.freeze({
      volatileFunctions: Object.freeze(unique(routing.volatileFunctions)),
      allowFunctions: Object.freeze(unique(routing.allowFunctions)),
      forcePrimaryPatterns: Object.freeze(routing.forcePrimaryPatterns),
      detectCatalogVolatile: routing.detectCatalogVolatile,
      catalogRefreshMs: routing.catalogRefreshMs,
    }),
    slowQuery: Object.freeze(parsed.slowQuery),
    telemetry: Object.freeze(
      withProvidersAsNames({
        enabled: parsed.telemetry.enabled,
        pgInstrumentation: parsed.telemetry.pgInstrumentation,
        ...(parsed.telemetry.tracerProvider === undefined
          ? {}
          : { tracerProvider: parsed.telemetry.tracerProvider }),
        ...(parsed.telemetry.meterProvider === undefined
          ? {}
          : { meterProvider: parsed.telemetry.meterProvider }),
      }),
    ),
    monitoring: resolveMonitoring(parsed.monitoring),
    cache: resolveCache(parsed.cache),
    preparedStatements: Object.freeze(parsed.preparedStatements),
    applicationName: parsed.applicationName,
  };
  return Object.freeze(config);
}

/**
 * OTel providers are object graphs with cycles (provider -> processor -> provider), so
 * `JSON.stringify(cluster.config)` threw. A non-enumerable toJSON names them instead; the
 * object keeps its keys and the providers themselves for the code that uses them.
 */
function withProvidersAsNames<T extends { tracerProvider?: unknown; meterProvider?: unknown }>(
  telemetry: T,
): T {
  const name = (provider: unknown) =>
    provider === undefined
      ? undefined
      : `[${(provider as { constructor?: { name?: string } }).constructor?.name ?? 'Provider'}]`;
  Object.defineProperty(telemetry, 'toJSON', {
    enumerable: false,
    value: () => ({
      ...telemetry,
      tracerProvider: name(telemetry.tracerProvider),
      meterProvider: name(telemetry.meterProvider),
    }),
  });
  return telemetry;
}

/** Monitoring is off without its section; with it, on unless `enabled: false`. */
function resolveMonitoring(parsed: ParsedConfig['monitoring']): ResolvedMonitoringConfig {
  const section = parsed ?? monitoringSchema.parse({});
  const { webhook } = section;
  return Object.freeze({
    enabled: parsed !== undefined && section.enabled,
    intervalMs: section.intervalMs,
    cooldownMs: section.cooldownMs,
    thresholds: Object.freeze(section.thresholds),
    ...(webhook === undefined
      ? {}
      : { webhook: Object.freeze({ ...webhook, headers: Object.freeze({ ...webhook.headers }) }) }),
  });
}

/** The cache is off without its section; with it, on unless `enabled: false`. */
function resolveCache(parsed: ParsedConfig['cache']): ResolvedCacheConfig {
  const section = parsed ?? cacheSchema.parse({});
  const maxEntryBytes = section.maxEntryBytes ?? Math.min(1024 * 1024, section.maxBytes);
  if (maxEntryBytes > section.maxBytes) {
    throw new ConfigError([
      {
        field: 'cache.maxEntryBytes',
        message: `must be at most cache.maxBytes (${section.maxBytes}); lower it or raise cache.maxBytes`,
      },
    ]);
  }
  return Object.freeze({
    ...section,
    maxEntryBytes,
    enabled: parsed !== undefined && section.enabled,
  });
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
