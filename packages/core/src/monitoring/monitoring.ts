import type { Counter, MeterProvider } from '@opentelemetry/api';
import type { ResolvedMonitoringConfig } from '../config/index.js';
import type { ClusterNode } from '../topology/index.js';
import type { Alert, AlertKind, Observation } from './alert.js';
import { AlertBook } from './alert-book.js';
import { SqlCollector } from './collectors.js';
import { diagnoseConnectionError } from './diagnosis.js';
import { WebhookSink, type WebhookStats } from './webhook.js';

export interface MonitoringHooks {
  /** Called once per transition (fired or resolved), after the round that saw it. */
  readonly alert: (alert: Alert) => void;
  readonly failoverInProgress: () => boolean;
  /** Where to register the alert metrics; absent means no metrics. */
  readonly meterProvider?: MeterProvider | undefined;
}

const ALL_KINDS: readonly AlertKind[] = [
  'replication-lag',
  'connection-usage',
  'slow-query',
  'node-down',
  'breaker-open',
  'failover',
  'long-transaction',
  'idle-in-transaction',
  'lock-wait',
  'xid-age',
  'cache-hit-ratio',
];

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/**
 * Turns what pgpulse already knows (probe results, lag, breakers, failover, statement
 * durations) and one SQL round trip per node into alerts, every `intervalMs` on an unref'd
 * timer that `stop()` clears. Rounds never overlap; statements only bump an in-memory maximum.
 */
export class Monitoring {
  private readonly book: AlertBook;
  private readonly collector: SqlCollector;
  private readonly sink: WebhookSink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Slowest statement per node since the last round, in ms. */
  private readonly slowest = new Map<string, number>();
  private failoverSeen = false;
  private transitions: Counter | undefined;
  rounds = 0;

  constructor(
    private readonly nodes: readonly ClusterNode[],
    private readonly config: ResolvedMonitoringConfig,
    private readonly hooks: MonitoringHooks,
  ) {
    this.book = new AlertBook(config.cooldownMs);
    this.collector = new SqlCollector(nodes, config);
    this.sink = config.webhook ? new WebhookSink(config.webhook) : undefined;
    if (hooks.meterProvider) this.registerMetrics(hooks.meterProvider);
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.round(), this.config.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sink?.close();
  }

  /** Its part of the statement observers: a statement finished (see statement()). */
  finished(
    event: { readonly node: { readonly name: string } },
    outcome: { readonly durationMs: number },
  ): void {
    this.statement(event.node.name, outcome.durationMs);
  }

  /** A statement finished on `node` after `durationMs` (the query path: O(1), no I/O). */
  statement(node: string, durationMs: number): void {
    if (durationMs < this.config.thresholds.slowQueryMs) return;
    if (durationMs > (this.slowest.get(node) ?? 0)) this.slowest.set(node, durationMs);
  }

  /** A failover started (it may finish before the next round; the round still reports it). */
  failoverStarted(): void {
    this.failoverSeen = true;
  }

  active(): Alert[] {
    return this.book.active();
  }

  history(): Alert[] {
    return this.book.history();
  }

  webhookStats(): WebhookStats | undefined {
    return this.sink?.stats();
  }

  /** One evaluation; concurrent calls share the round in flight. */
  round(): Promise<void> {
    this.running ??= this.evaluate().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async evaluate(): Promise<void> {
    if (this.stopped) return;
    const sql = await this.collector.collect();
    if (this.stopped) return;
    const observations = [...this.observeNodes(), this.observeFailover(), ...sql];
    this.rounds++;
    for (const alert of this.book.apply(observations)) {
      this.sink?.send(alert);
      this.transitions?.add(1, {
        'pgpulse.alert.kind': alert.kind,
        'pgpulse.alert.state': alert.state,
      });
      this.hooks.alert(alert);
    }
  }

  private observeNodes(): Observation[] {
    const t = this.config.thresholds;
    const out: Observation[] = [];
    for (const node of this.nodes) {
      const name = node.name;
      const up = node.health.up;
      out.push({
        kind: 'node-down',
        node: name,
        value: up ? 0 : node.health.consecutiveFailures,
        threshold: 1,
        breached: !up,
        message: up
          ? `${name} answers its health probes`
          : `${name} (${node.role}) is down (${diagnoseConnectionError(new Error(node.health.lastError ?? 'no answer')).reason}): ${node.health.lastError ?? 'no answer'}`,
      });
      const open = node.breaker.state === 'open';
      out.push({
        kind: 'breaker-open',
        node: name,
        value: open ? 1 : 0,
        threshold: 1,
        breached: open,
        message: open
          ? `${name}'s circuit breaker is open: statements skip it`
          : `${name}'s circuit breaker is ${node.breaker.state}`,
      });
      const lag = node.health.lagMs;
      if (node.role === 'replica' && up && lag !== undefined) {
        out.push({
          kind: 'replication-lag',
          node: name,
          value: Math.round(lag),
          threshold: t.replicationLagMs,
          breached: lag >= t.replicationLagMs,
          message: `${name} is ${fmt(lag)} ms behind the primary (threshold ${fmt(t.replicationLagMs)} ms)`,
        });
      }
      const slowest = this.slowest.get(name) ?? 0;
      out.push({
        kind: 'slow-query',
        node: name,
        value: Math.round(slowest),
        threshold: t.slowQueryMs,
        breached: slowest >= t.slowQueryMs,
        message:
          slowest > 0
            ? `a statement on ${name} took ${fmt(slowest)} ms (threshold ${fmt(t.slowQueryMs)} ms)`
            : `no statement on ${name} over ${fmt(t.slowQueryMs)} ms this interval`,
      });
    }
    this.slowest.clear();
    return out;
  }

  private observeFailover(): Observation {
    const active = this.failoverSeen || this.hooks.failoverInProgress();
    this.failoverSeen = false;
    return {
      kind: 'failover',
      value: active ? 1 : 0,
      threshold: 1,
      breached: active,
      message: active ? 'a failover is in progress' : 'no failover in progress',
    };
  }

  private registerMetrics(provider: MeterProvider): void {
    const meter = provider.getMeter('@pgpulse/core');
    const firing = meter.createObservableGauge('pgpulse.alerts.firing', {
      description: 'Alerts firing now, by kind',
    });
    firing.addCallback((result) => {
      const counts = new Map<AlertKind, number>(ALL_KINDS.map((kind) => [kind, 0]));
      for (const alert of this.book.active())
        counts.set(alert.kind, (counts.get(alert.kind) ?? 0) + 1);
      for (const [kind, count] of counts) result.observe(count, { 'pgpulse.alert.kind': kind });
    });
    const transitions = meter.createCounter('pgpulse.alerts.transitions', {
      description: 'Alert transitions, by kind and state (firing, resolved)',
    });
    this.transitions = transitions;
  }
}
