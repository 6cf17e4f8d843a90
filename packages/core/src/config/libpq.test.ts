import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors/index.js';
import { applyLibpqConventions } from './libpq.js';
import { parseConfig } from './resolve.js';

describe("libpq's conventions", () => {
  it('a multi-host URL lists every node, with the same credentials, database and parameters', () => {
    const config = parseConfig(
      applyLibpqConventions({
        primary:
          'postgres://app:s%40cret@db1:5432,db2:5433,db3/shop?sslmode=disable&target_session_attrs=any',
      }),
    );
    expect(
      [config.primary, ...config.replicas].map((n) => [n.host, n.port, n.database, n.user]),
    ).toEqual([
      ['db1', 5432, 'shop', 'app'],
      ['db2', 5433, 'shop', 'app'],
      ['db3', 5432, 'shop', 'app'],
    ]);
    expect(config.replicas.every((n) => n.password === 's@cret')).toBe(true);
    expect(config.readWriteSplit).toBe(true);
  });

  it('target_session_attrs maps to routing; an explicit option wins', () => {
    const url = (attrs: string) => `postgres://db1,db2/shop?target_session_attrs=${attrs}`;
    expect(parseConfig({ primary: url('read-write') }).readWriteSplit).toBe(false);
    expect(parseConfig({ primary: url('primary') }).readWriteSplit).toBe(false);
    expect(parseConfig({ primary: url('standby') }).replicaLag.policy).toBe('error');
    expect(parseConfig({ primary: url('prefer-standby') }).replicaLag.policy).toBe('fallback');
    expect(
      parseConfig({ primary: url('standby'), replicaLag: { policy: 'least-lagged' } }).replicaLag
        .policy,
    ).toBe('least-lagged');
  });

  it('refuses what has no meaning, naming the field', () => {
    const attempt = (config: unknown) => {
      try {
        parseConfig(config);
      } catch (error) {
        if (error instanceof ConfigError)
          return error.issues.map((i) => `${i.field}: ${i.message}`);
        throw error;
      }
      return [];
    };
    expect(
      attempt({ primary: 'postgres://db1,db2/shop', replicas: ['postgres://db3/shop'] }),
    ).toEqual([
      expect.stringMatching(/^replicas: a multi-host primary URL already lists every node/),
    ]);
    expect(attempt({ primary: 'postgres://db1,db2/shop?target_session_attrs=fastest' })).toEqual([
      expect.stringMatching(/^primary: target_session_attrs must be one of/),
    ]);
    expect(attempt({ primary: 'postgres://db1,db2/shop?load_balance_hosts=disable' })).toEqual([
      expect.stringMatching(/^primary: load_balance_hosts=disable .* loadBalancing: 'weighted'/),
    ]);
  });

  it('builds the cluster from PG* variables when no primary is given', () => {
    const env = {
      PGHOST: 'db1,db2',
      PGPORT: '5432,6432',
      PGDATABASE: 'shop',
      PGUSER: 'app',
      PGPASSWORD: 'p:w/d',
      PGAPPNAME: 'checkout',
      PGTARGETSESSIONATTRS: 'read-write',
    };
    const config = parseConfig(applyLibpqConventions({ pool: { maxSize: 3 } }, env));
    expect(
      [config.primary, ...config.replicas].map(
        (n) => `${n.user}@${n.host}:${n.port}/${n.database}`,
      ),
    ).toEqual(['app@db1:5432/shop', 'app@db2:6432/shop']);
    expect(config.primary.password).toBe('p:w/d');
    expect(config.applicationName).toBe('checkout');
    expect(config.readWriteSplit).toBe(false);
    expect(config.pool.maxSize).toBe(3);
    // A unix socket directory.
    const socket = parseConfig(
      applyLibpqConventions({}, { PGHOST: '/var/run/postgresql', PGUSER: 'me' }),
    );
    expect([socket.primary.host, socket.primary.user]).toEqual(['/var/run/postgresql', 'me']);
  });

  it('leaves everything else as it is', () => {
    const config = { primary: 'postgres://db1/shop', replicas: ['postgres://db2/shop'] };
    expect(applyLibpqConventions(config, { PGHOST: 'elsewhere' })).toBe(config);
    expect(() => parseConfig(applyLibpqConventions({}, {}))).toThrow(/primary/);
  });
});
