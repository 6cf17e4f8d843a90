import type { PgPulseConfig } from '../config/index.js';
import { fromPgPoolOptions } from '../config/index.js';
import type { RemoveReason } from '../pool/index.js';
import type { RoutingPool } from '../routing/index.js';
import { createCluster } from './cluster.js';

const REMOVE_MESSAGES: Readonly<Record<RemoveReason, string>> = {
  idle: 'remove idle client',
  expired: 'remove expired client',
  expended: 'remove expended client',
  error: 'client removed',
  closed: 'client removed',
};

/**
 * `new pg.Pool(options)` for pgpulse: builds a cluster from pg.Pool's options (each mapped to
 * its pgpulse meaning, or refused with a ConfigError saying why) and returns its pool, with
 * pg-pool's `onConnect` / `verify` hooks and `log` attached. `base` adds what pg.Pool's options
 * cannot say, such as the replicas.
 */
export function createPoolFromPgOptions(
  options: Readonly<Record<string, unknown>>,
  base: Partial<PgPulseConfig> = {},
): RoutingPool {
  const mapping = fromPgPoolOptions(options, base);
  const pool = createCluster(mapping.config).pool;
  for (const setup of mapping.setup) pool.addConnectionSetup(setup);
  const log = mapping.log;
  if (log) {
    pool.on('connect', () => log('new client connected'));
    pool.on('acquire', () => log('client acquired'));
    pool.on('release', (err) => log(err ? 'client released with error' : 'client released'));
    // pg-pool's own words for why a client left.
    pool.onRemoved = (reason) => log(REMOVE_MESSAGES[reason]);
  }
  return pool;
}
