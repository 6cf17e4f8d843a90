import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PartitioningError } from '../errors/index.js';
import type { ConnectionLease } from '../sql/index.js';
import { PartitionManager } from './partition-manager.js';

/** The maintenance loop's scheduling, with fake timers and a fake connection provider. */

const strategy = { table: 'market_data', column: 'ts', type: 'range', interval: 'daily' } as const;
const HOUR = 3_600_000;

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('maintenance loop', () => {
  it('runs at start and every intervalMs, reports errors through onError, and stops', async () => {
    const errors: PartitioningError[] = [];
    let attempts = 0;
    const pm = new PartitionManager(
      () => {
        attempts++;
        return Promise.reject(new Error('connect ECONNREFUSED'));
      },
      [strategy],
      {
        onError: (error) => {
          errors.push(error);
          throw new Error('a broken callback must not stop the loop');
        },
      },
    );
    pm.start();
    pm.start(); // idempotent
    expect(attempts).toBe(0); // never runs on the caller's stack
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts).toBe(1);
    expect(errors.map((e) => [e.kind, e.retriable])).toEqual([['connect-failed', true]]);
    expect(errors[0]?.message).toMatch(
      /No connection for partition maintenance: connect ECONNREFUSED/,
    );
    expect(pm.stats()).toMatchObject({ runs: 1, errors: 1, looping: true });
    expect(pm.stats().lastReport?.tables[0]?.status).toBe('failed');

    await vi.advanceTimersByTimeAsync(HOUR - 1);
    expect(attempts).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toBe(2);

    await pm.stop();
    expect(pm.stats().looping).toBe(false);
    await vi.advanceTimersByTimeAsync(10 * HOUR);
    expect(attempts).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never overlaps runs: the next run is scheduled after the previous one ends', async () => {
    let finish: (lease: ConnectionLease) => void = () => {};
    let fail: (error: Error) => void = () => {};
    let attempts = 0;
    const pm = new PartitionManager(
      () => {
        attempts++;
        return new Promise<ConnectionLease>((resolve, reject) => {
          finish = resolve;
          fail = reject;
        });
      },
      [strategy],
      { intervalMs: 60_000 },
    );
    pm.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts).toBe(1);
    const joined = pm.maintain();
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(attempts).toBe(1);
    expect(pm.stats().joined).toBe(1);

    fail(new Error('slow connection gave up'));
    const report = await joined;
    expect(report.tables[0]?.errors[0]?.kind).toBe('connect-failed');
    await vi.advanceTimersByTimeAsync(59_999);
    expect(attempts).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toBe(2);

    // stop() waits for the run in progress.
    let stopped = false;
    const stopping = pm.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finish({
      client: { query: () => Promise.reject(new Error('server closed the connection')) },
      release: () => {},
    });
    await stopping;
    expect(stopped).toBe(true);
    expect(pm.stats().runs).toBe(2);
  });
});
