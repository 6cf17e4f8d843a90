import type { ResolvedWebhookConfig } from '../config/index.js';
import type { Alert } from './alert.js';

/** The resolved `monitoring.webhook` config. */
export type WebhookSinkOptions = ResolvedWebhookConfig;

export interface WebhookStats {
  readonly sent: number;
  readonly failed: number;
  readonly dropped: number;
  readonly queued: number;
}

/**
 * Sends each alert transition as one JSON POST (`{ source: 'pgpulse', alert }`), one at a
 * time, in order, with retries and exponential backoff. It runs on its own promise chain fed
 * by the monitoring timer, never on a statement's path; a dead endpoint costs a bounded queue.
 */
export class WebhookSink {
  private readonly queue: Alert[] = [];
  private draining = false;
  private closed = false;
  private readonly abort = new AbortController();
  private wake: (() => void) | undefined;
  private sent = 0;
  private failed = 0;
  private dropped = 0;

  constructor(private readonly options: WebhookSinkOptions) {}

  send(alert: Alert): void {
    if (this.closed) return;
    this.queue.push(alert);
    if (this.queue.length > this.options.queueSize) {
      this.queue.shift();
      this.dropped++;
    }
    if (!this.draining) void this.drain();
  }

  stats(): WebhookStats {
    return {
      sent: this.sent,
      failed: this.failed,
      dropped: this.dropped,
      queued: this.queue.length,
    };
  }

  /** Stops sending: the attempt in flight is aborted, queued alerts are dropped. */
  close(): void {
    this.closed = true;
    this.dropped += this.queue.length;
    this.queue.length = 0;
    this.abort.abort();
    this.wake?.();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (let alert = this.queue.shift(); alert && !this.closed; alert = this.queue.shift()) {
        if (await this.deliver(alert)) this.sent++;
        else if (!this.closed) this.failed++;
      }
    } finally {
      this.draining = false;
    }
  }

  private async deliver(alert: Alert): Promise<boolean> {
    const body = JSON.stringify({ source: 'pgpulse', alert });
    for (let attempt = 0; attempt <= this.options.retries && !this.closed; attempt++) {
      if (attempt > 0) await this.sleep(this.options.backoffMs * 2 ** (attempt - 1));
      if (this.closed) return false;
      try {
        const response = await fetch(this.options.url, {
          method: 'POST',
          headers: { ...this.options.headers, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.timeoutMs)]),
        });
        // Read the body so the connection can be reused.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return true;
      } catch {
        // A refused connection, a timeout or an abort: retried below unless closed.
      }
    }
    return false;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wake = done;
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}
