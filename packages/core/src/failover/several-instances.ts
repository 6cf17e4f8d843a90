import type { FailoverDeps, FailoverEvents } from './events.js';

/** How often (in probe rounds) `automatic` without a coordinator looks for other instances. */
const INSTANCE_CHECK_ROUNDS = 300;

/**
 * `automatic` promotion without a coordinator is for one app instance: this counts pgpulse's
 * health connections on the primary now and then (rounds 1, 10, 50, then every 300) and says
 * so when there are more, once per new count.
 */
export class InstanceWatch {
  #seen = 1;

  constructor(
    private readonly active: boolean,
    private readonly deps: Pick<FailoverDeps, 'countInstances' | 'applicationName'>,
    private readonly events: Pick<FailoverEvents, 'severalInstances'>,
  ) {}

  /** Called at the end of a health round the manager acted on; `rounds` counts every round. */
  afterRound(rounds: number): void {
    if (!this.active) return;
    const early = rounds === 1 || rounds === 10 || rounds === 50;
    if (!early && rounds % INSTANCE_CHECK_ROUNDS !== 0) return;
    void this.deps
      .countInstances()
      .then((instances) => {
        if (instances <= 1 || instances === this.#seen) return;
        this.#seen = instances;
        this.events.severalInstances({
          instances,
          applicationName: this.deps.applicationName,
          advice:
            "failover.promotion 'automatic' without failover.coordinator is for a single app " +
            "instance: with several, use 'external' with an HA manager (Patroni) or set " +
            'failover.coordinator (etcd) so that only one instance promotes',
        });
      })
      .catch(() => {});
  }
}
