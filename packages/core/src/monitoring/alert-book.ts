import { type Alert, alertId, type Observation } from './alert.js';

/**
 * The lifecycle of every alert: an observation over its threshold fires an alert once (later
 * breaches only update its value), the first observation back under resolves it, and a
 * resolved id does not fire again within `cooldownMs` (so a flapping condition does not page
 * every round). An id not observed in a round (its node could not be queried) is left as it is.
 */
export class AlertBook {
  private readonly firing = new Map<string, Alert>();
  private readonly resolvedAt = new Map<string, number>();
  private readonly recent: Alert[] = [];

  constructor(
    private readonly cooldownMs: number,
    private readonly historySize = 100,
  ) {}

  /** Applies one round; returns the transitions (fired and resolved alerts), in order. */
  apply(observations: readonly Observation[], now = Date.now()): Alert[] {
    const changes: Alert[] = [];
    for (const obs of observations) {
      const id = alertId(obs.kind, obs.node);
      const current = this.firing.get(id);
      if (obs.breached) {
        if (current) {
          this.firing.set(id, { ...current, value: obs.value, message: obs.message });
          continue;
        }
        const lastResolved = this.resolvedAt.get(id);
        if (lastResolved !== undefined && now - lastResolved < this.cooldownMs) continue;
        const alert: Alert = {
          id,
          kind: obs.kind,
          state: 'firing',
          ...(obs.node === undefined ? {} : { node: obs.node }),
          value: obs.value,
          threshold: obs.threshold,
          since: new Date(now).toISOString(),
          message: obs.message,
        };
        this.firing.set(id, alert);
        changes.push(alert);
      } else if (current) {
        changes.push(this.resolve(id, current, now, obs.value, obs.message));
      }
    }
    for (const change of changes) {
      this.recent.push(change);
      if (this.recent.length > this.historySize) this.recent.shift();
    }
    return changes;
  }

  /** Alerts firing now, oldest first. */
  active(): Alert[] {
    return [...this.firing.values()];
  }

  /** The latest transitions (fired and resolved), oldest first, at most `historySize`. */
  history(): Alert[] {
    return [...this.recent];
  }

  private resolve(id: string, current: Alert, now: number, value: number, message: string): Alert {
    this.firing.delete(id);
    this.resolvedAt.set(id, now);
    return {
      ...current,
      state: 'resolved',
      value,
      resolvedAt: new Date(now).toISOString(),
      message,
    };
  }
}
