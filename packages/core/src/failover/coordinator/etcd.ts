import { hostname } from 'node:os';
import type { Etcd3, Lease } from 'etcd3';
import type { ResolvedEtcdCoordinatorConfig } from '../../config/index.js';
import { CoordinatorUnavailableError } from '../../errors/index.js';
import type { FailoverCoordinator, PromotionLease, PromotionRecord } from './types.js';

/**
 * A leader lease in etcd (v3): `<prefix>/<cluster>/leader` is created only if absent, bound to
 * a lease with a TTL, so one instance at a time holds it and a holder that dies loses it after
 * the TTL. `<prefix>/<cluster>/promotion` records the last promotion with no lease, so it
 * outlives its holder. Every call is bounded by `timeoutMs`; past it the coordinator counts as
 * unavailable and nothing is promoted.
 */
export class EtcdCoordinator implements FailoverCoordinator {
  readonly holderId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
  private client: Promise<Etcd3> | undefined;

  constructor(private readonly config: ResolvedEtcdCoordinatorConfig) {}

  async acquire(cluster: string): Promise<PromotionLease | undefined> {
    const client = await this.connect();
    const base = `${this.config.prefix.replace(/\/+$/, '')}/${cluster}`;
    const leaderKey = `${base}/leader`;
    const recordKey = `${base}/promotion`;
    const lease = client.lease(this.config.leaseTtlSeconds, { autoKeepAlive: true });
    // Keep-alive failures are reported by the calls that need the lease, not as crashes.
    lease.on('lost', () => {});
    try {
      await this.bounded(lease.grant(), 'granting an etcd lease');
      const taken = await this.bounded(
        client
          .if(leaderKey, 'Create', '==', 0)
          .then(lease.put(leaderKey).value(this.holderId))
          .commit(),
        'taking the promotion lease in etcd',
      );
      if (!taken.succeeded) {
        await this.revoke(lease);
        return undefined;
      }
    } catch (err) {
      await this.revoke(lease);
      throw err;
    }
    return {
      recorded: async () => {
        const text = await this.bounded(
          client.get(recordKey).string(),
          'reading the last promotion from etcd',
        );
        return text === null ? undefined : parseRecord(text);
      },
      record: async (record) => {
        const full: PromotionRecord = {
          ...record,
          by: this.holderId,
          at: new Date().toISOString(),
        };
        const stored = await this.bounded(
          client
            .if(leaderKey, 'Value', '==', this.holderId)
            .then(client.put(recordKey).value(JSON.stringify(full)))
            .commit(),
          'recording the promotion in etcd',
        );
        if (!stored.succeeded)
          throw new CoordinatorUnavailableError(
            'the etcd promotion lease expired before the promotion was recorded',
          );
      },
      release: () => this.revoke(lease),
    };
  }

  async prepare(): Promise<void> {
    try {
      const client = await this.connect();
      // One read opens the gRPC channel; the key need not exist.
      await this.bounded(client.get(this.config.prefix).exists(), 'opening the etcd connection');
    } catch {
      // acquire() reports it when a promotion needs the service.
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) (await client.catch(() => undefined))?.close();
  }

  private connect(): Promise<Etcd3> {
    this.client ??= (async () => {
      let etcd: typeof import('etcd3');
      try {
        etcd = await import('etcd3');
      } catch (err) {
        throw new CoordinatorUnavailableError(
          "failover.coordinator type 'etcd' needs the etcd3 package (pnpm add etcd3@1.1.2)",
          { cause: err },
        );
      }
      return new etcd.Etcd3({
        hosts: [...this.config.endpoints],
        dialTimeout: this.config.timeoutMs,
      });
    })();
    const pending = this.client;
    // A failed import is not cached: installing the package later works without a restart.
    pending.catch(() => {
      if (this.client === pending) this.client = undefined;
    });
    return pending;
  }

  private async revoke(lease: Lease): Promise<void> {
    try {
      await this.bounded(lease.revoke(), 'revoking the etcd lease');
    } catch {
      // It expires by itself after its TTL.
      lease.release();
    }
  }

  private async bounded<T>(work: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new CoordinatorUnavailableError(
              `etcd did not answer within ${this.config.timeoutMs} ms while ${what}`,
            ),
          ),
        this.config.timeoutMs,
      );
    });
    work.catch(() => {});
    try {
      return await Promise.race([work, late]);
    } catch (err) {
      if (err instanceof CoordinatorUnavailableError) throw err;
      throw new CoordinatorUnavailableError(`etcd failed while ${what}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}

function parseRecord(text: string): PromotionRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<PromotionRecord>;
    if (typeof value.node !== 'string' || typeof value.timeline !== 'number') return undefined;
    return {
      node: value.node,
      timeline: value.timeline,
      by: String(value.by ?? ''),
      at: String(value.at ?? ''),
    };
  } catch {
    return undefined;
  }
}
