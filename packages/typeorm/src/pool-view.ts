import { EventEmitter } from 'node:events';
import type { Cluster } from '@pgpulse/core';
import pg from 'pg';
import { honourCacheRequests } from './query-result-cache.js';

// The two pg.Pool look-alikes TypeORM's replication option is given: the primary and routed views.

/** Host markers TypeORM hands back to `new Pool(...)`, telling the two views apart. */
export const PRIMARY_VIEW = 'pgpulse.primary';
export const ROUTED_VIEW = 'pgpulse.routed';

type Release = (err?: Error | boolean) => void;
type ConnectCallback = (
  err: Error | undefined,
  client: pg.PoolClient | undefined,
  release: Release,
) => void;

/**
 * What TypeORM's postgres driver uses of a pg Pool: `connect` (both forms), `on('error')` and
 * `end`. `end` does not close the cluster: it belongs to whoever created it and may serve
 * other code; close it with `cluster.close()`.
 */
class ClusterPoolView extends EventEmitter {
  /**
   * Where checkouts come from. The primary view runs every statement of a master query runner
   * on the primary: transactions and session state already pin it in core; this adds the reads
   * such a runner makes outside one (TypeORM's own pre-save lookups, schema and migration
   * reads, your own).
   */
  readonly #pool: pg.Pool;

  constructor(
    readonly cluster: Cluster,
    /** `primary`: every statement on the primary; `routed`: each statement routed by its SQL. */
    readonly target: 'primary' | 'routed',
  ) {
    super();
    this.#pool = target === 'primary' ? cluster.pool.scoped({ target: 'primary' }) : cluster.pool;
  }

  connect(): Promise<pg.PoolClient>;
  connect(callback: ConnectCallback): void;
  connect(callback?: ConnectCallback): Promise<pg.PoolClient> | undefined {
    const acquired = this.acquire();
    if (!callback) return acquired;
    acquired.then(
      (client) => callback(undefined, client, (err) => client.release(err)),
      (err: Error) => callback(err, undefined, () => {}),
    );
    return undefined;
  }

  end(callback?: (err?: Error) => void): Promise<void> {
    callback?.();
    return Promise.resolve();
  }

  private async acquire(): Promise<pg.PoolClient> {
    const client = await this.#pool.connect();
    honourCacheRequests(this.cluster, client);
    return client;
  }
}

/** The part of the `pg` module TypeORM's postgres driver uses, as given by `options.driver`. */
interface PgDriverModule {
  readonly Pool: new (options: { readonly host?: string }) => ClusterPoolView;
  readonly defaults: typeof pg.defaults;
}

export function pgDriverFor(cluster: Cluster): PgDriverModule {
  class Pool extends ClusterPoolView {
    constructor(options: { readonly host?: string }) {
      if (options.host !== PRIMARY_VIEW && options.host !== ROUTED_VIEW) {
        throw new Error(
          'pgpulse: this driver only serves the DataSource options built by pgpulseDataSourceOptions()',
        );
      }
      super(cluster, options.host === PRIMARY_VIEW ? 'primary' : 'routed');
    }
  }
  // TypeORM sets `parseInt8` through `defaults`; pg's own object keeps that behaviour.
  return { Pool, defaults: pg.defaults };
}
