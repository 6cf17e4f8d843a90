import util from 'node:util';
import fc from 'fast-check';
import pg from 'pg';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../errors/index.js';
import {
  createNodeConfig,
  type NodeConfig,
  nodeConnectionOptions,
  type PgPulseConfig,
  parseConfig,
  type ResolvedConfig,
  redactUrl,
} from './index.js';
import type { configSchema } from './schema.js';

function issuesOf(input: unknown): ConfigIssue[] {
  try {
    parseConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected parseConfig to throw');
}

function messageOf(input: unknown): string {
  try {
    parseConfig(input);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected parseConfig to throw');
}

/** Every way a config or node commonly ends up in a log line. */
function renderings(value: unknown): string[] {
  return [
    JSON.stringify(value),
    util.inspect(value),
    util.inspect(value, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }),
    util.format('%o', value),
    util.format('%O', value),
    util.format('%s', value),
    util.format('%j', value),
    util.format(value),
    String(value),
    `${value}`,
    JSON.stringify({ ...(value as object) }),
    util.inspect(structuredClone({ ...(value as object) })),
  ];
}

const minimal = { primary: 'postgres://app@localhost/app' } satisfies PgPulseConfig;

describe('parseConfig: defaults', () => {
  it('fills every section from a minimal config', () => {
    const config = parseConfig(minimal);
    expect(config.replicas).toEqual([]);
    expect(config.pool).toEqual({
      minSize: 0,
      warm: true,
      maxSize: 10,
      overflow: 0,
      acquireTimeoutMs: 10_000,
      connectTimeoutMs: 5_000,
      idleTimeoutMs: 30_000,
      prePing: true,
      prePingAfterIdleMs: 5_000,
      recycleSeconds: 3_600,
      recycleJitter: 0.1,
      maxUses: 0,
      statementTimeoutMs: 0,
      exitOnIdle: true,
      pooling: 'transaction',
      resetOnRelease: 'none',
      binary: false,
      pipeline: false,
    });
    expect(config.loadBalancing).toBe('round-robin');
    expect(config.readWriteSplit).toBe(true);
    expect(config.circuitBreaker).toEqual({
      failureThreshold: 5,
      resetTimeoutMs: 10_000,
      jitter: 0.2,
    });
    expect(config.health).toEqual({
      intervalMs: 1_000,
      timeoutMs: 1_000,
      maxConsecutiveFailures: 3,
      positionCheckMs: 10,
    });
    expect(config.replicaLag).toEqual({
      maxLagMs: null,
      maxLagBytes: null,
      policy: 'fallback',
      hysteresis: 0.2,
    });
    expect(config.consistency).toEqual({
      level: 'read-your-writes',
      mode: 'lsn',
      windowMs: 2_000,
      waitMs: 0,
    });
    expect(config.failover).toEqual({ promotion: 'external', writeWaitMs: 0 });
    expect(config.routing).toEqual({
      volatileFunctions: [],
      allowFunctions: [],
      forcePrimaryPatterns: [],
      detectCatalogVolatile: true,
      catalogRefreshMs: 30_000,
    });
    expect(config.slowQuery).toEqual({
      thresholdMs: 500,
      explain: true,
      explainAnalyze: false,
      captureParams: false,
      minExplainIntervalMs: 60_000,
      queueSize: 100,
      maxBytes: 8 * 1024 * 1024,
    });
    expect(config.telemetry).toEqual({ enabled: true, pgInstrumentation: 'suppress' });
    expect(config.applicationName).toBe('pgpulse');
  });

  it('keeps values that are given and fills the rest of a partial section', () => {
    const config = parseConfig({
      ...minimal,
      pool: { maxSize: 3, pooling: 'session' },
      loadBalancing: 'adaptive',
      readWriteSplit: false,
      replicaLag: { maxLagMs: 500, maxLagBytes: 1_048_576, policy: 'error' },
      consistency: { level: 'strong' },
      failover: { promotion: 'semi-automatic', writeWaitMs: 2_000 },
      routing: { volatileFunctions: ['my_fn', 'my_fn'], allowFunctions: ['random'] },
      slowQuery: { thresholdMs: 0, explain: false },
      applicationName: 'billing',
    });
    expect(config.pool.maxSize).toBe(3);
    expect(config.pool.pooling).toBe('session');
    expect(config.pool.minSize).toBe(0);
    expect(config.loadBalancing).toBe('adaptive');
    expect(config.readWriteSplit).toBe(false);
    expect(config.replicaLag).toEqual({
      maxLagMs: 500,
      maxLagBytes: 1_048_576,
      policy: 'error',
      hysteresis: 0.2,
    });
    expect(config.consistency.level).toBe('strong');
    expect(config.consistency.mode).toBe('lsn');
    expect(config.failover).toEqual({ promotion: 'semi-automatic', writeWaitMs: 2_000 });
    expect(config.routing.volatileFunctions).toEqual(['my_fn']);
    expect(config.routing.allowFunctions).toEqual(['random']);
    expect(config.slowQuery).toMatchObject({ thresholdMs: 0, explain: false, queueSize: 100 });
    expect(config.applicationName).toBe('billing');
  });

  it('treats recycleSeconds 0 and null as never (null)', () => {
    expect(parseConfig({ ...minimal, pool: { recycleSeconds: 0 } }).pool.recycleSeconds).toBeNull();
    expect(
      parseConfig({ ...minimal, pool: { recycleSeconds: null } }).pool.recycleSeconds,
    ).toBeNull();
    expect(parseConfig({ ...minimal, pool: { recycleSeconds: 60 } }).pool.recycleSeconds).toBe(60);
  });

  it('returns a deeply frozen config', () => {
    const config = parseConfig({ ...minimal, replicas: ['postgres://r1/app'] });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.pool)).toBe(true);
    expect(Object.isFrozen(config.replicas)).toBe(true);
    expect(Object.isFrozen(config.replicas[0])).toBe(true);
    expect(Object.isFrozen(config.routing.forcePrimaryPatterns)).toBe(true);
  });

  it('does not share default arrays between parses', () => {
    const a = parseConfig(minimal);
    const b = parseConfig(minimal);
    expect(a.replicas).not.toBe(b.replicas);
    expect(a.routing.volatileFunctions).not.toBe(b.routing.volatileFunctions);
  });
});

describe('parseConfig: nodes', () => {
  it('parses a URL: user, password (decoded), host, port, database, sslmode', () => {
    const { primary } = parseConfig({
      primary: 'postgresql://app%40corp:p%40ss%3Aw%2Frd@db.example:6432/sales%20db?sslmode=require',
    });
    expect(primary).toMatchObject({
      name: 'primary',
      role: 'primary',
      host: 'db.example',
      port: 6432,
      database: 'sales db',
      user: 'app@corp',
      weight: 1,
    });
    expect(primary.password).toBe('p@ss:w/rd');
    expect(primary.ssl).toBe(true);
  });

  it('accepts an unencoded @ in the password (the last @ ends it)', () => {
    const { primary } = parseConfig({ primary: 'postgres://app:p@ss@db/app' });
    expect(primary.password).toBe('p@ss');
    expect(primary.host).toBe('db');
  });

  it.each([
    ['postgres:///app', { host: 'localhost', port: 5432, database: 'app', user: 'postgres' }],
    ['postgres://db', { host: 'db', database: 'postgres', user: 'postgres' }],
    ['postgres://bob@db', { host: 'db', database: 'bob', user: 'bob' }],
    ['postgres://[::1]:5433/app', { host: '::1', port: 5433 }],
    ['postgres://%2Fvar%2Frun%2Fpostgresql/app', { host: '/var/run/postgresql' }],
    ['postgres:///app?host=/tmp&port=6000', { host: '/tmp', port: 6000 }],
    ['postgres://db/app?user=u&dbname=other', { user: 'u', database: 'other' }],
  ])('parses %s', (url, expected) => {
    expect(parseConfig({ primary: url }).primary).toMatchObject(expected);
  });

  it.each([
    ['disable', false],
    ['prefer', undefined],
    ['require', true],
    ['verify-full', true],
    ['no-verify', { rejectUnauthorized: false }],
  ])('maps sslmode=%s', (mode, ssl) => {
    expect(parseConfig({ primary: `postgres://db/app?sslmode=${mode}` }).primary.ssl).toEqual(ssl);
  });

  it('accepts the object form with defaults', () => {
    const { primary } = parseConfig({ primary: { host: 'db', password: 'pw' } });
    expect(primary).toMatchObject({
      host: 'db',
      port: 5432,
      user: 'postgres',
      database: 'postgres',
    });
    expect(primary.password).toBe('pw');
    expect(primary.ssl).toBeUndefined();
  });

  it('names nodes primary, replica-1, replica-2 ... unless named', () => {
    const config = parseConfig({
      primary: 'postgres://p/app',
      replicas: ['postgres://r1/app', { host: 'r2', weight: 3 }, { host: 'r3', name: 'analytics' }],
    });
    expect(config.primary.name).toBe('primary');
    expect(config.replicas.map((r) => [r.name, r.role, r.weight])).toEqual([
      ['replica-1', 'replica', 1],
      ['replica-2', 'replica', 3],
      ['analytics', 'replica', 1],
    ]);
  });

  it('rejects duplicate names, including a clash with a default name', () => {
    expect(
      issuesOf({
        primary: 'postgres://p/app',
        replicas: [{ host: 'a', name: 'primary' }, { host: 'b', name: 'replica-3' }, { host: 'c' }],
      }),
    ).toEqual([
      {
        field: 'replicas.0.name',
        message: "'primary' is already used by primary; node names must be unique",
      },
      {
        field: 'replicas.2.name',
        message:
          "the default name 'replica-3' is already used by replicas.1; give this node a distinct name",
      },
    ]);
  });

  it('creates standalone nodes with the same guarantees', () => {
    const node = createNodeConfig({
      name: 'new-primary',
      role: 'primary',
      host: 'h',
      password: 'pw',
    });
    expect(node).toMatchObject({ port: 5432, user: 'postgres', database: 'postgres', weight: 1 });
    expect(node.password).toBe('pw');
    expect(JSON.stringify(node)).not.toContain('pw"');
    expect(String(node)).toBe('primary "new-primary" (h:5432)');
  });
});

describe('parseConfig: errors', () => {
  it('names a missing primary and says what to give', () => {
    expect(issuesOf({})).toEqual([
      {
        field: 'primary',
        message:
          "required — the primary's connection URL or { host, port, database, user, password }",
      },
    ]);
  });

  it('rejects a non-object config at the root', () => {
    expect(issuesOf(undefined)[0]?.field).toBe('');
    expect(issuesOf('postgres://db/app')[0]?.message).toMatch(
      /^must be a pgpulse configuration object/,
    );
  });

  it('names replicas.N.weight with the value it got', () => {
    expect(issuesOf({ ...minimal, replicas: [{ host: 'a' }, { host: 'b', weight: 0 }] })).toEqual([
      { field: 'replicas.1.weight', message: 'must be a positive number (got 0)' },
    ]);
  });

  it('lists the allowed load balancing strategies', () => {
    expect(issuesOf({ ...minimal, loadBalancing: 'random' })).toEqual([
      {
        field: 'loadBalancing',
        message:
          "must be one of 'round-robin' | 'weighted' | 'least-connections' | 'adaptive' (got 'random')",
      },
    ]);
  });

  it('suggests the closest enum value', () => {
    expect(issuesOf({ ...minimal, loadBalancing: 'round_robin' })[0]?.message).toMatch(
      /did you mean 'round-robin'\?$/,
    );
  });

  it('rejects unknown options everywhere, with typo suggestions', () => {
    expect(
      issuesOf({
        ...minimal,
        loadbalancing: 'weighted',
        pool: { maxsize: 5 },
        circuitBreaker: { failureTreshold: 3 },
        replicas: [{ host: 'r', wieght: 2 }],
        maxLagMs: 100,
        completelyUnknown: true,
      }),
    ).toEqual([
      { field: 'replicas.0.wieght', message: 'unknown option; did you mean weight?' },
      { field: 'pool.maxsize', message: 'unknown option; did you mean maxSize?' },
      {
        field: 'circuitBreaker.failureTreshold',
        message: 'unknown option; did you mean failureThreshold?',
      },
      { field: 'loadbalancing', message: 'unknown option; did you mean loadBalancing?' },
      { field: 'maxLagMs', message: 'unknown option here; did you mean replicaLag.maxLagMs?' },
      {
        field: 'completelyUnknown',
        message: expect.stringMatching(
          /^unknown option \(expected one of: primary, replicas, pool,/,
        ),
      },
    ]);
  });

  it('explains that weight is a replica option', () => {
    expect(issuesOf({ primary: { host: 'p', weight: 2 } })[0]).toEqual({
      field: 'primary.weight',
      message:
        'unknown option; weight applies to replicas only (the primary takes reads only as a fallback)',
    });
  });

  it('reports every bad field at once', () => {
    const issues = issuesOf({
      primary: { host: 'p', port: 70_000 },
      pool: { maxSize: 0, recycleJitter: 2, pooling: 'nope' },
      circuitBreaker: { failureThreshold: 1.5, resetTimeoutMs: -1, jitter: 'x' },
      health: { intervalMs: 0 },
      replicaLag: { maxLagMs: -1, hysteresis: 1.5 },
      consistency: { mode: 'sometimes' },
      routing: { volatileFunctions: 'nextval' },
      readWriteSplit: 'yes',
      applicationName: 'x'.repeat(64),
    });
    expect(issues.map((i) => i.field)).toEqual([
      'primary.port',
      'pool.maxSize',
      'pool.recycleJitter',
      'pool.pooling',
      'readWriteSplit',
      'circuitBreaker.failureThreshold',
      'circuitBreaker.resetTimeoutMs',
      'circuitBreaker.jitter',
      'health.intervalMs',
      'replicaLag.maxLagMs',
      'replicaLag.hysteresis',
      'consistency.mode',
      'routing.volatileFunctions',
      'applicationName',
    ]);
    expect(issues[0]?.message).toBe('must be an integer port between 1 and 65535 (got 70000)');
    expect(issues[4]?.message).toBe("must be true or false (got 'yes')");
    expect(issues[7]?.message).toBe("must be a number between 0 and 1 (got 'x')");
  });

  it('names pool.minSize when it exceeds maxSize', () => {
    expect(issuesOf({ ...minimal, pool: { minSize: 20, maxSize: 10 } })).toEqual([
      { field: 'pool.minSize', message: 'must be at most pool.maxSize (10) (got 20)' },
    ]);
  });

  it('names a section that is not an object', () => {
    expect(issuesOf({ ...minimal, pool: 5 })).toEqual([
      { field: 'pool', message: 'must be an object of pool options (got 5)' },
    ]);
  });

  it('names a replica that is neither a URL nor an object', () => {
    expect(issuesOf({ ...minimal, replicas: [42] })).toEqual([
      {
        field: 'replicas.0',
        message:
          "must be a replica's connection URL or { host, port, database, user, password, weight } (got 42)",
      },
    ]);
  });

  it.each([
    ['mysql://u:hunter2@db/app', /must start with postgres:\/\//],
    ['postgres://u:hunter2@db:99999/app', /does not parse/],
    ['postgres://u:hunter2@db/app?sslmode=sometimes', /sslmode must be one of/],
    ['postgres://u:hunter2@db/app?connect_timeout=5', /use pool.connectTimeoutMs/],
    ['postgres://u:hunter2@db/app?target_session_attrs=any', /unsupported parameter/],
    [
      'postgres://u:hunter2@db/app?statement_timeout=soon',
      /statement_timeout must be milliseconds/,
    ],
    ['postgres://u:hunt#er2@db/app', /percent-encode|fragment/],
    ['postgres://u:%ZZhunter2@db/app', /malformed %-escape/],
    ['host=db password=hunter2', /key=value/],
    ['u:hunter2@db/app', /must start with postgres/],
  ])('names the field for the invalid URL %s without echoing the password', (url, reason) => {
    const issues = issuesOf({ primary: 'postgres://db/app', replicas: [url] });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe('replicas.0');
    expect(issues[0]?.message).toMatch(/^not a valid postgres URL: /);
    expect(issues[0]?.message).toMatch(reason);
    expect(messageOf({ primary: 'postgres://db/app', replicas: [url] })).not.toMatch(/hunt|er2/);
  });

  it('never echoes a password from an invalid URL, whatever the password', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 0, maxLength: 20 }), (tail) => {
        const secret = `Zq9${tail}`;
        const url = `postgres://app:${secret}@db.example:70000/app`;
        let message = '';
        try {
          parseConfig({ primary: url });
          return true;
        } catch (err) {
          message = (err as Error).message;
        }
        return !message.includes('Zq9') && !message.includes(encodeURIComponent(secret));
      }),
    );
  });

  it('never echoes a password with an unencoded comma and question mark (not a multi-host URL)', () => {
    // Found by the property above (seed 315527): "app:Zq9,?" was split as two hosts.
    let message = '';
    try {
      parseConfig({ primary: 'postgres://app:Zq9,?@db.example:70000/app' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('not a valid postgres URL');
    expect(message).not.toContain('Zq9');
  });

  it('does not echo a password given with the wrong type', () => {
    expect(issuesOf({ primary: { host: 'h', password: 12_345_678 } })).toEqual([
      { field: 'primary.password', message: 'must be a string (got a number)' },
    ]);
  });

  it('compiles forcePrimaryPatterns case-insensitively and rejects bad ones by index', () => {
    const config = parseConfig({
      ...minimal,
      routing: { forcePrimaryPatterns: ['pg_advisory_', /FOR\s+UPDATE/gi] },
    });
    const [advisory, forUpdate] = config.routing.forcePrimaryPatterns;
    expect(advisory?.test('SELECT PG_ADVISORY_LOCK(1)')).toBe(true);
    // A g flag would make consecutive tests alternate between true and false.
    expect(forUpdate?.flags).toBe('i');
    expect(forUpdate?.test('select 1 for update')).toBe(true);
    expect(forUpdate?.test('select 1 for update')).toBe(true);

    const issues = issuesOf({
      ...minimal,
      routing: { forcePrimaryPatterns: ['ok', '(unclosed', ''] },
    });
    expect(issues.map((i) => i.field)).toEqual([
      'routing.forcePrimaryPatterns.1',
      'routing.forcePrimaryPatterns.2',
    ]);
    expect(issues[0]?.message).toMatch(/^not a valid regular expression: /);
    expect(issues[1]?.message).toMatch(/readWriteSplit: false/);
  });
});

describe('invariant 6: credentials never printed', () => {
  const config = parseConfig({
    primary: 'postgres://app:primary-S3cret@db.example:5432/app?sslmode=require',
    replicas: [
      'postgresql://app:replica-S3cret@r1.example/app',
      {
        host: 'r2.example',
        password: 'object-S3cret',
        ssl: { rejectUnauthorized: true, key: 'PRIVATE-KEY-S3cret', passphrase: 'pass-S3cret' },
      },
    ],
  });
  const nodes: NodeConfig[] = [config.primary, ...config.replicas];

  it('keeps passwords readable through node.password', () => {
    expect(nodes.map((n) => n.password)).toEqual([
      'primary-S3cret',
      'replica-S3cret',
      'object-S3cret',
    ]);
    expect(config.replicas[1]?.ssl).toMatchObject({ key: 'PRIVATE-KEY-S3cret' });
  });

  it.each(['config', 'primary', 'replica-1', 'replica-2'])(
    'never prints a secret of %s',
    (which) => {
      const value = which === 'config' ? config : nodes.find((n) => n.name === which);
      for (const text of renderings(value)) {
        expect(text).not.toMatch(/S3cret/);
      }
    },
  );

  it('shows that a password is set, masked', () => {
    expect(JSON.parse(JSON.stringify(config.primary))).toMatchObject({
      password: '***',
      ssl: true,
    });
    expect(util.inspect(config.replicas[1])).toMatch(/key: '\*\*\*'/);
    expect(Object.keys(config.primary)).not.toContain('password');
  });

  it('holds for any password (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 30 }), (tail) => {
        const password = `Qx7${tail}`;
        const resolved = parseConfig({
          primary: { host: 'h', password },
          replicas: [{ host: 'r', password }],
        });
        if (resolved.primary.password !== password) return false;
        return [resolved, resolved.primary, resolved.replicas[0]]
          .flatMap(renderings)
          .every((text) => !text.includes('Qx7'));
      }),
    );
  });
});

describe('nodeConnectionOptions', () => {
  const config = parseConfig({
    primary: { host: 'db', port: 6543, user: 'app', database: 'sales', password: 'pw-S3cret' },
    replicas: [{ host: 'r', password: 'r-S3cret', ssl: { key: 'KEY-S3cret', ca: 'CA' } }],
    applicationName: 'svc',
  });

  it('gives pg what it needs, with the password in a closure no inspection reaches', () => {
    const options = nodeConnectionOptions(config.primary, {
      application_name: config.applicationName,
      max: 5,
    });
    expect(options).toMatchObject({
      host: 'db',
      port: 6543,
      user: 'app',
      database: 'sales',
      application_name: 'svc',
      max: 5,
    });
    expect(typeof options.password).toBe('function');
    expect(options.password?.()).toBe('pw-S3cret');
    expect(JSON.stringify(options)).not.toMatch(/S3cret/);
    expect(util.inspect(options)).not.toMatch(/S3cret/);
    expect(
      util.inspect(options, { showHidden: true, depth: Number.POSITIVE_INFINITY, getters: true }),
    ).not.toMatch(/S3cret/);
  });

  it('is accepted by pg.Pool, which still sees the password', async () => {
    const options: pg.PoolConfig = nodeConnectionOptions(config.replicas[0]!, { max: 1 });
    const pool = new pg.Pool(options);
    expect((pool.options as { password?: () => string }).password?.()).toBe('r-S3cret');
    expect((pool.options.ssl as { key?: string }).key).toBe('KEY-S3cret');
    expect(util.inspect(pool.options)).not.toMatch(/S3cret/);
    await pool.end();
    // The shared config was neither frozen into pg's way nor mutated by it.
    expect(Object.keys(config.replicas[0]!.ssl as object)).toContain('key');
  });
});

describe('redactUrl', () => {
  it.each([
    ['postgres://u:pw@h/db', 'postgres://u:***@h/db'],
    ['postgres://u:p@ss@h:5432/db', 'postgres://u:***@h:5432/db'],
    ['postgres://u@h/db', 'postgres://u@h/db'],
    ['postgres://h/db', 'postgres://h/db'],
    [
      'postgres://u:pw@h/db?password=x&sslmode=require',
      'postgres://u:***@h/db?password=***&sslmode=require',
    ],
    ['postgres://u:12/w@h/db', 'postgres://u:***@h/db'],
    ['postgres://u:p#w@h/db', 'postgres://u:***@h/db'],
    ['u:pw@h/db', 'u:***@h/db'],
    ['host=h password=pw user=u', 'host=h password=*** user=u'],
    ['not a url at all', 'not a url at all'],
  ])('%s -> %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});

describe('types', () => {
  it('PgPulseConfig accepts everything the schema accepts, and vice versa for common shapes', () => {
    expectTypeOf<z.input<typeof configSchema>>().toExtend<PgPulseConfig>();
    expectTypeOf(parseConfig).returns.toEqualTypeOf<ResolvedConfig>();
    const sample: PgPulseConfig = {
      primary: { host: 'h', ssl: { rejectUnauthorized: false } },
      replicas: ['postgres://r/app', { host: 'r2', weight: 2 }] as const,
      routing: { forcePrimaryPatterns: ['x', /y/] },
      pool: { recycleSeconds: null },
    };
    expect(parseConfig(sample).replicas).toHaveLength(2);
  });
});

describe('parseConfig: pooler', () => {
  it("defaults to 'none'; cluster-wide 'transaction' reaches every node, a node's own wins", () => {
    expect(parseConfig({ primary: 'postgres://a@h/db' }).primary.pooler).toBe('none');
    const config = parseConfig({
      primary: 'postgres://a@h/db',
      replicas: [{ host: 'r1' }, { host: 'r2', pooler: 'none' }],
      pooler: 'transaction',
    });
    expect(config.primary.pooler).toBe('transaction');
    expect(config.replicas.map((r) => r.pooler)).toEqual(['transaction', 'none']);
    const node = parseConfig({ primary: { host: 'h', pooler: 'transaction' } }).primary;
    expect(JSON.parse(JSON.stringify(node))).toMatchObject({ pooler: 'transaction' });
  });

  it('names the dotted path of a bad pooler', () => {
    try {
      parseConfig({ primary: 'postgres://a@h/db', replicas: [{ host: 'r', pooler: 'session' }] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).issues.map((i) => i.field)).toEqual(['replicas.0.pooler']);
    }
  });
});
