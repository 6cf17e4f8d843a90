import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import pg from 'pg';
import { z } from 'zod';
import { LOAD_BALANCING_STRATEGIES } from '../balancing/index.js';
import { FINAL } from './issues.js';
import { optionsSchema, primarySchema, replicaSchema, settingsSchema } from './node-schema.js';
import {
  bool,
  choice,
  fraction,
  nonEmpty,
  nonNegInt,
  nonNegMs,
  POOLER_MODES,
  posInt,
  posMs,
  section,
} from './schema-fields.js';

/**
 * The zod schema of a pgpulse configuration, section by section (nodes are in node-schema.ts,
 * the field kinds in schema-fields.ts). Resolution is resolve.ts, messages issues.ts.
 */

export { suggest } from './issues.js';
export { acceptedOptionKeys } from './schema-fields.js';

const CLIENT_PHRASE =
  "pg.Client, a class extending it, or a constructor called as pg.Pool calls it (new Client(config)) whose instances carry pg's protocol stream (client.connection); not pg.native: pgpulse reads each connection's protocol messages (transaction status, reported settings)";

/** pg.Client itself or a class extending it: what the pool can track (see PoolOptions.Client). */
export function isPgClientClass(value: unknown): value is typeof pg.Client {
  return (
    typeof value === 'function' &&
    (value === pg.Client || (value.prototype as unknown) instanceof pg.Client)
  );
}

/**
 * What pool.Client may be: any constructor but pg.native's. A look-alike (a function or class
 * not extending pg.Client, as pg.Pool accepts) is checked per connection once it has connected:
 * an instance without pg's protocol stream is ended with a ConfigError (connections.ts).
 */
export function isClientConstructor(value: unknown): value is typeof pg.Client {
  if (typeof value !== 'function') return false;
  if (isPgClientClass(value)) return true;
  // pg.native is a lazy getter that loads pg-native; read it only once it was loaded (its
  // getter replaces itself with a value), so checking never loads pg-native.
  const native = Object.getOwnPropertyDescriptor(pg, 'native');
  const loaded = native && 'value' in native ? (native.value as { Client?: unknown } | null) : null;
  return loaded?.Client !== value;
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
    pipeline: bool().default(false),
    Client: z.custom<typeof pg.Client>(isClientConstructor, CLIENT_PHRASE).optional(),
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

export const monitoringSchema = section(
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

export const cacheSchema = section(
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

export type ParsedConfig = z.output<typeof configSchema>;
