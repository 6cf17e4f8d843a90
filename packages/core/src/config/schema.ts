import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import pg from 'pg';
import { z } from 'zod';
import { LOAD_BALANCING_STRATEGIES } from '../balancing/index.js';
import { ConfigError, type ConfigIssue } from '../errors/index.js';
import { applyLibpqConventions } from './libpq.js';
import {
  createNodeConfig,
  DEFAULT_PORT,
  parseNodeUrl,
  redactUrl,
  type UrlNodeFields,
} from './node.js';
import {
  parseOptions,
  type ServerSettings,
  settingNameProblem,
  settingValueProblem,
} from './server-settings.js';
import type {
  NodeConfig,
  PoolerMode,
  ResolvedCacheConfig,
  ResolvedConfig,
  ResolvedMonitoringConfig,
  SslOption,
} from './types.js';

/**
 * Validation is zod; messages are ours. Every schema carries a short phrase saying what the
 * field must be ("a positive number"); `toConfigIssues` turns a zod issue into
 * `must be <phrase> (got <value>)` or `required — <phrase>`, with the dotted path as the field.
 * Issues whose message is already complete (URL and regex errors, cross-field checks) are
 * marked with FINAL and passed through.
 */
const FINAL = { pgpulseFinal: true } as const;

const PHRASE = {
  posInt: 'an integer >= 1',
  nonNegInt: 'an integer >= 0',
  positive: 'a positive number',
  posMs: 'a positive number of milliseconds',
  nonNegMs: 'a number of milliseconds >= 0',
  fraction: 'a number between 0 and 1',
  bool: 'true or false',
  port: 'an integer port between 1 and 65535',
} as const;

const oneOf = (values: readonly string[]): string =>
  `one of ${values.map((v) => `'${v}'`).join(' | ')}`;

const posInt = () => z.number(PHRASE.posInt).int(PHRASE.posInt).min(1, PHRASE.posInt);
const nonNegInt = () => z.number(PHRASE.nonNegInt).int(PHRASE.nonNegInt).min(0, PHRASE.nonNegInt);
const posMs = () => z.number(PHRASE.posMs).positive(PHRASE.posMs);
const nonNegMs = () => z.number(PHRASE.nonNegMs).min(0, PHRASE.nonNegMs);
const fraction = () => z.number(PHRASE.fraction).min(0, PHRASE.fraction).max(1, PHRASE.fraction);
const bool = () => z.boolean(PHRASE.bool);
const POOLER_MODES = ['none', 'transaction'] as const;
const choice = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, oneOf(values));
const nonEmpty = (phrase: string) => z.string(phrase).trim().min(1, phrase);

/** Keys of every strict object, by path pattern (`replicas.*`), for "did you mean". */
const KNOWN_KEYS = new Map<string, readonly string[]>();

function section<S extends z.ZodRawShape>(pattern: string, shape: S, phrase: string) {
  KNOWN_KEYS.set(pattern, Object.keys(shape));
  return z.strictObject(shape, phrase);
}

// ---------------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------------

type NodeFields = Omit<UrlNodeFields, 'settings'> & {
  name?: string | undefined;
  weight?: number | undefined;
  settings?: ServerSettings | undefined;
  options?: Record<string, string> | undefined;
  pooler?: PoolerMode | undefined;
};

const SETTINGS_PHRASE = "an object of server settings, e.g. { statement_timeout: '5s' }";

/** `{ statement_timeout: '5s', lock_timeout: 1000 }`: names checked, values sendable. */
const settingsSchema = z
  .custom<ServerSettings>(isPlainObject, SETTINGS_PHRASE)
  .superRefine((settings, ctx) => {
    for (const [name, value] of Object.entries(settings)) {
      const problem = settingNameProblem(name) ?? settingValueProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, path: [name] });
    }
  });

/** libpq's `options` string (`-c statement_timeout=5s -c lock_timeout=1s`), parsed into settings. */
const optionsSchema = z
  .string("a libpq options string, e.g. '-c statement_timeout=5s'")
  .transform((text, ctx): Record<string, string> => {
    const parsed = parseOptions(text);
    if (parsed.ok) return parsed.settings;
    ctx.addIssue({ code: 'custom', message: parsed.reason });
    return z.NEVER;
  });

const PRIMARY_PHRASE = "the primary's connection URL or { host, port, database, user, password }";
const REPLICA_PHRASE =
  "a replica's connection URL or { host, port, database, user, password, weight }";

const nodeShape = {
  host: nonEmpty('a host name, IP address or unix socket directory'),
  port: z
    .number(PHRASE.port)
    .int(PHRASE.port)
    .min(1, PHRASE.port)
    .max(65_535, PHRASE.port)
    .default(DEFAULT_PORT),
  database: nonEmpty('a non-empty database name').optional(),
  user: nonEmpty('a non-empty user name').optional(),
  password: z.string('a string').optional(),
  name: nonEmpty('a non-empty node name').optional(),
  ssl: z
    .custom<SslOption>(
      (v) => typeof v === 'boolean' || isPlainObject(v),
      'true, false or an object of tls.connect options',
    )
    .optional(),
  settings: settingsSchema.optional(),
  options: optionsSchema.optional(),
  pooler: choice(POOLER_MODES).optional(),
};

const nodeUrl = z.string().transform((url, ctx): NodeFields => {
  const parsed = parseNodeUrl(url);
  if (parsed.ok) return parsed.fields;
  // No `input` on the issue: it would carry the password into anything that logs zod issues.
  ctx.addIssue({
    code: 'custom',
    message: `not a valid postgres URL: ${parsed.reason} (got ${quote(redactUrl(url))})`,
    params: FINAL,
  });
  return z.NEVER;
});

const primarySchema = z.union(
  [nodeUrl, section('primary', nodeShape, PRIMARY_PHRASE)],
  PRIMARY_PHRASE,
);

const replicaSchema = z.union(
  [
    nodeUrl,
    section(
      'replicas.*',
      { ...nodeShape, weight: z.number(PHRASE.positive).positive(PHRASE.positive).default(1) },
      REPLICA_PHRASE,
    ),
  ],
  REPLICA_PHRASE,
);

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

const CLIENT_PHRASE =
  "pg.Client or a class extending it (pgpulse reads each connection's protocol messages: transaction status, reported settings; pg.native and pg-native-like objects have none)";

/** pg.Client itself or a class extending it: what the pool can track (see PoolOptions.Client). */
export function isPgClientClass(value: unknown): value is typeof pg.Client {
  return (
    typeof value === 'function' &&
    (value === pg.Client || (value.prototype as unknown) instanceof pg.Client)
  );
}

const poolSchema = section(
  'pool',
  {
    minSize: nonNegInt().default(0),
    warm: bool().default(true),
    maxSize: posInt().default(10),
    overflow: nonNegInt().default(0),
    acquireTimeoutMs: posMs().default(10_000),
    connectTimeoutMs: posMs().default(5_000),
    idleTimeoutMs: nonNegMs().default(30_000),
    prePing: bool().default(true),
    prePingAfterIdleMs: nonNegMs().default(5_000),
    recycleSeconds: z
      .number('a number of seconds > 0, or 0 / null for never')
      .min(0, 'a number of seconds > 0, or 0 / null for never')
      .nullable()
      .default(3_600),
    recycleJitter: fraction().default(0.1),
    maxUses: nonNegInt().default(0),
    statementTimeoutMs: nonNegInt().default(0),
    exitOnIdle: bool().default(true),
    pooling: choice(['transaction', 'session', 'statement']).default('transaction'),
    resetOnRelease: choice(['none', 'objects', 'all']).default('none'),
    binary: bool().default(false),
    Client: z.custom<typeof pg.Client>(isPgClientClass, CLIENT_PHRASE).optional(),
  },
  'an object of pool options',
).superRefine((pool, ctx) => {
  if (pool.minSize > pool.maxSize) {
    ctx.addIssue({
      code: 'custom',
      path: ['minSize'],
      message: `must be at most pool.maxSize (${pool.maxSize}) (got ${pool.minSize})`,
      params: FINAL,
    });
  }
});

const circuitBreakerSchema = section(
  'circuitBreaker',
  {
    failureThreshold: posInt().default(5),
    resetTimeoutMs: posMs().default(10_000),
    jitter: fraction().default(0.2),
  },
  'an object of circuit breaker options',
);

const healthSchema = section(
  'health',
  {
    intervalMs: posMs().default(1_000),
    timeoutMs: posMs().default(1_000),
    maxConsecutiveFailures: posInt().default(3),
    positionCheckMs: nonNegMs().default(10),
  },
  'an object of health probe options',
);

const replicaLagSchema = section(
  'replicaLag',
  {
    maxLagMs: nonNegMs().nullable().optional(),
    maxLagBytes: nonNegInt().nullable().optional(),
    policy: choice(['fallback', 'least-lagged', 'error']).default('fallback'),
    hysteresis: fraction().default(0.2),
  },
  'an object of replica lag options',
);

const consistencySchema = section(
  'consistency',
  {
    level: choice(['eventual', 'read-your-writes', 'strong']).default('read-your-writes'),
    mode: choice(['lsn', 'time-window']).default('lsn'),
    windowMs: nonNegMs().default(2_000),
    waitMs: nonNegMs().default(0),
  },
  'an object of consistency options',
);

const coordinatorSchema = section(
  'failover.coordinator',
  {
    type: choice(['etcd']),
    endpoints: z
      .array(nonEmpty('an etcd endpoint URL'), 'an array of etcd endpoint URLs')
      .min(1, 'an array of etcd endpoint URLs'),
    prefix: nonEmpty('a key prefix').default('/pgpulse'),
    leaseTtlSeconds: z
      .number('an integer >= 2')
      .int('an integer >= 2')
      .min(2, 'an integer >= 2')
      .default(10),
    timeoutMs: posMs().default(2_000),
  },
  "an object { type: 'etcd', endpoints: [...] }",
);

const failoverSchema = section(
  'failover',
  {
    promotion: choice(['external', 'automatic', 'semi-automatic', 'manual']).default('external'),
    writeWaitMs: nonNegMs().default(0),
    coordinator: coordinatorSchema.optional(),
  },
  'an object of failover options',
).superRefine((failover, ctx) => {
  if (failover.coordinator && failover.promotion !== 'automatic') {
    ctx.addIssue({
      code: 'custom',
      path: ['coordinator'],
      message: `a coordinator is used only by promotion 'automatic' (got '${failover.promotion}'); remove it or set promotion: 'automatic'`,
      params: FINAL,
    });
  }
});

const functionNames = () =>
  z.array(nonEmpty('a function name'), 'an array of function names').default(() => []);

const forcePrimaryPattern = z
  .custom<string | RegExp>(
    (v) => typeof v === 'string' || v instanceof RegExp,
    'a regular expression (a source string or a RegExp)',
  )
  .transform((pattern, ctx): RegExp => {
    if (pattern === '') {
      ctx.addIssue({
        code: 'custom',
        message:
          'an empty pattern matches every statement; use readWriteSplit: false to send everything to the primary',
        params: FINAL,
      });
      return z.NEVER;
    }
    try {
      // Statement-level `g`/`y` flags would make RegExp#test stateful (lastIndex) across calls.
      return typeof pattern === 'string'
        ? new RegExp(pattern, 'i')
        : new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        message: `not a valid regular expression: ${(err as Error).message}`,
        params: FINAL,
      });
      return z.NEVER;
    }
  });

const routingSchema = section(
  'routing',
  {
    volatileFunctions: functionNames(),
    allowFunctions: functionNames(),
    forcePrimaryPatterns: z
      .array(forcePrimaryPattern, 'an array of regular expressions')
      .default(() => []),
    detectCatalogVolatile: bool().default(true),
    catalogRefreshMs: nonNegMs().default(30_000),
  },
  'an object of routing options',
);

const slowQuerySchema = section(
  'slowQuery',
  {
    thresholdMs: nonNegMs().default(500),
    explain: bool().default(true),
    explainAnalyze: bool().default(false),
    captureParams: bool().default(false),
    minExplainIntervalMs: nonNegMs().default(60_000),
    queueSize: posInt().default(100),
    maxBytes: posInt().default(8 * 1024 * 1024),
  },
  'an object of slow query options',
);

const hasMethod = (method: string) => (value: unknown) =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Record<string, unknown>)[method] === 'function';

const telemetrySchema = section(
  'telemetry',
  {
    enabled: bool().default(true),
    tracerProvider: z
      .custom<TracerProvider>(hasMethod('getTracer'), 'an OpenTelemetry TracerProvider')
      .optional(),
    meterProvider: z
      .custom<MeterProvider>(hasMethod('getMeter'), 'an OpenTelemetry MeterProvider')
      .optional(),
    pgInstrumentation: choice(['suppress', 'nest'] as const).default('suppress'),
  },
  'an object of telemetry options',
);

const monitoringSchema = section(
  'monitoring',
  {
    enabled: bool().default(true),
    intervalMs: posMs().default(10_000),
    cooldownMs: nonNegMs().default(60_000),
    thresholds: section(
      'monitoring.thresholds',
      {
        connectionUsage: fraction().default(0.8),
        slowQueryMs: nonNegMs().default(1_000),
        replicationLagMs: nonNegMs().default(10_000),
        longTransactionMs: posMs().default(60_000),
        idleInTransactionMs: posMs().default(60_000),
        lockWaitMs: posMs().default(10_000),
        xidAge: posInt().default(1_000_000_000),
        cacheHitRatio: fraction().default(0.9),
      },
      'an object of alert thresholds',
    ).prefault({}),
    webhook: section(
      'monitoring.webhook',
      {
        url: z
          .string('an http(s) URL')
          .refine((url) => /^https?:\/\/[^\s]+$/i.test(url), 'an http(s) URL'),
        headers: z
          .record(z.string(), z.string(), 'an object of header names to string values')
          .default(() => ({})),
        timeoutMs: posMs().default(5_000),
        retries: nonNegInt().default(3),
        backoffMs: nonNegMs().default(500),
        queueSize: posInt().default(100),
      },
      'an object { url, headers?, timeoutMs?, retries?, backoffMs?, queueSize? }',
    ).optional(),
  },
  'an object of monitoring options',
);

const CHANNEL_PHRASE =
  'false or a lower-case identifier of at most 63 characters (a LISTEN/NOTIFY channel)';

const cacheSchema = section(
  'cache',
  {
    enabled: bool().default(true),
    maxBytes: posInt().default(64 * 1024 * 1024),
    defaultTtlMs: posMs().default(30_000),
    maxEntryBytes: posInt().optional(),
    channel: z
      .union([z.literal(false), z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/)], CHANNEL_PHRASE)
      .default('pgpulse_cache'),
    unsubscribedMaxAgeMs: posMs().default(1000),
  },
  'an object { enabled?, maxBytes?, defaultTtlMs?, maxEntryBytes?, channel?, unsubscribedMaxAgeMs? }',
);

const preparedStatementsSchema = section(
  'preparedStatements',
  {
    // Off until the bench figures hold (docs/benchmarks.md, pnpm bench:compare).
    enabled: bool().default(false),
    maxPerConnection: posInt().default(100),
  },
  'an object { enabled?, maxPerConnection? }',
);

const APPLICATION_NAME =
  'a non-empty string of at most 63 bytes (PostgreSQL truncates longer names)';

export const configSchema = section(
  '',
  {
    primary: primarySchema,
    replicas: z
      .array(replicaSchema, 'an array of replica connection URLs or objects')
      .default(() => []),
    pool: poolSchema.prefault({}),
    loadBalancing: choice(LOAD_BALANCING_STRATEGIES).default('round-robin'),
    readWriteSplit: bool().default(true),
    circuitBreaker: circuitBreakerSchema.prefault({}),
    health: healthSchema.prefault({}),
    replicaLag: replicaLagSchema.prefault({}),
    consistency: consistencySchema.prefault({}),
    failover: failoverSchema.prefault({}),
    routing: routingSchema.prefault({}),
    slowQuery: slowQuerySchema.prefault({}),
    telemetry: telemetrySchema.prefault({}),
    monitoring: monitoringSchema.optional(),
    settings: settingsSchema.optional(),
    options: optionsSchema.optional(),
    pooler: choice(POOLER_MODES).optional(),
    cache: cacheSchema.optional(),
    preparedStatements: preparedStatementsSchema.prefault({}),
    applicationName: nonEmpty(APPLICATION_NAME)
      .refine((name) => Buffer.byteLength(name) <= 63, APPLICATION_NAME)
      .default('pgpulse'),
  },
  'a pgpulse configuration object { primary, replicas?, pool?, ... }',
);

type ParsedConfig = z.output<typeof configSchema>;

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/**
 * Validate a configuration and apply every default. Throws ConfigError listing every bad
 * field at once, each with its dotted path and what it must be; no message contains a password.
 */
export function parseConfig(input: unknown): ResolvedConfig {
  const result = configSchema.safeParse(applyLibpqConventions(input), {
    reportInput: true,
    error: fallbackPhrase,
  });
  if (!result.success) throw new ConfigError(toConfigIssues(result.error.issues, []));
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

// ---------------------------------------------------------------------------------------------
// Issue formatting
// ---------------------------------------------------------------------------------------------

type ZodIssue = z.core.$ZodIssue;
type Path = readonly PropertyKey[];

function toConfigIssues(issues: readonly ZodIssue[], prefix: Path): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          out.push({ field: dotted([...path, key]), message: unknownKeyMessage(path, key) });
        }
        break;
      case 'invalid_union': {
        // A string goes down the URL branch and an object down the object branch; report the
        // branch the user meant, not "matched neither".
        const meant = issue.errors.filter((branch) => !isRootTypeMismatch(branch));
        const only = meant.length === 1 ? meant[0] : undefined;
        if (only !== undefined) out.push(...toConfigIssues(only, path));
        else out.push(phraseIssue(path, issue));
        break;
      }
      default:
        if (issue.code === 'custom' && issue.params?.pgpulseFinal === true) {
          out.push({ field: dotted(path), message: issue.message });
        } else {
          out.push(phraseIssue(path, issue));
        }
    }
  }
  return out;
}

function isRootTypeMismatch(branch: readonly ZodIssue[]): boolean {
  return branch.length === 1 && branch[0]?.code === 'invalid_type' && branch[0].path.length === 0;
}

function phraseIssue(path: Path, issue: ZodIssue): ConfigIssue {
  const field = dotted(path);
  const input = issue.input;
  if (input === undefined && path.length > 0)
    return { field, message: `required — ${issue.message}` };
  let message = `must be ${issue.message} (got ${show(input, path)})`;
  if (issue.code === 'invalid_value' && typeof input === 'string') {
    const close = suggest(
      input,
      issue.values.filter((v): v is string => typeof v === 'string'),
    );
    if (close !== undefined) message += `; did you mean '${close}'?`;
  }
  return { field, message };
}

/** Backstop for any check that has no phrase of its own. */
function fallbackPhrase(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return `a value of type ${issue.expected}`;
    case 'too_small':
      return `${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}`;
    case 'too_big':
      return `${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}`;
    case 'invalid_value':
      return oneOf(issue.values.map(String));
    default:
      return undefined;
  }
}

function unknownKeyMessage(path: Path, key: string): string {
  const pattern = path
    .map((segment) => (typeof segment === 'number' ? '*' : String(segment)))
    .join('.');
  if (pattern === 'primary' && key === 'weight') {
    return 'unknown option; weight applies to replicas only (the primary takes reads only as a fallback)';
  }
  const known = KNOWN_KEYS.get(pattern) ?? [];
  const close = suggest(key, known);
  if (close !== undefined) return `unknown option; did you mean ${close}?`;
  // Right name, wrong place, e.g. `maxLagMs` at the top level instead of under `replicaLag`.
  for (const [otherPattern, keys] of KNOWN_KEYS) {
    if (otherPattern === pattern || otherPattern === '') continue;
    const hit = keys.find((k) => k.toLowerCase() === key.toLowerCase());
    if (hit !== undefined) {
      return `unknown option here; did you mean ${otherPattern.replace('*', '<n>')}.${hit}?`;
    }
  }
  return known.length > 0
    ? `unknown option (expected one of: ${known.join(', ')})`
    : 'unknown option';
}

/** The closest candidate by edit distance, if close enough to be a typo. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const budget = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= budget ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

const SENSITIVE_SEGMENT = /^(password|ssl)$/i;

/** A value as it may appear in an error message: never a password, never TLS material. */
function show(value: unknown, path: Path): string {
  if (path.some((segment) => typeof segment === 'string' && SENSITIVE_SEGMENT.test(segment))) {
    return describeType(value);
  }
  switch (typeof value) {
    case 'string':
      return quote(redactUrl(value));
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    default:
      return describeType(value);
  }
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof RegExp) return 'a RegExp';
  const type = typeof value;
  return type === 'undefined' ? 'undefined' : `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

function quote(text: string): string {
  const short = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return `'${short}'`;
}

function dotted(path: Path): string {
  return path.map(String).join('.');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The option names the schema accepts, by path pattern (`''` is the top level, `replicas.*` a
 * replica in object form). The generated configuration reference is checked against it.
 * @internal
 */
export function acceptedOptionKeys(): ReadonlyMap<string, readonly string[]> {
  return KNOWN_KEYS;
}
