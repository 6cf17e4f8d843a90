import { inspect } from 'node:util';
import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import { sleep, waitUntil } from '@pgpulse/sandbox/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  ConnectTimeoutError,
  NodeConnectionError,
  type NodeLabel,
  PoolClosedError,
  PoolTimeoutError,
} from '../errors/index.js';
import { isAvailabilityError } from '../health/index.js';
import {
  type Clock,
  type ConnectionConfig,
  NodePool,
  type NodePoolListener,
  type NodePoolOptions,
  type PooledConnection,
} from './index.js';

let cluster: SandboxCluster;
let password: string;
const pools: NodePool[] = [];
let appSeq = 0;

beforeAll(async () => {
  cluster = await startCluster({ replicas: 0 });
  password = decodeURIComponent(new URL(cluster.primary.url).password);
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.end()));
});

afterAll(async () => {
  await cluster?.stop();
});

const BASE: NodePoolOptions = {
  minSize: 0,
  maxSize: 5,
  overflow: 0,
  acquireTimeoutMs: 2_000,
  connectTimeoutMs: 2_000,
  idleTimeoutMs: 0,
  prePing: false,
  prePingAfterIdleMs: 0,
  recycleSeconds: null,
  recycleJitter: 0,
};

interface Made {
  pool: NodePool;
  app: string;
  label: NodeLabel;
}

function makePool(
  options: Partial<NodePoolOptions> = {},
  port = cluster.primary.port,
  listener: NodePoolListener = {},
): Made {
  const app = `pgpulse-pool-test-${process.pid}-${++appSeq}`;
  const label: NodeLabel = { name: 'primary', role: 'primary', host: '127.0.0.1', port };
  const connection: ConnectionConfig = {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    password,
  };
  const pool = new NodePool(
    label,
    connection,
    { ...BASE, applicationName: app, ...options },
    listener,
  );
  pools.push(pool);
  return { pool, app, label };
}

async function backends(app: string): Promise<number> {
  const [row] = await cluster.query<{ n: number }>(
    'primary',
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
    [app],
  );
  return row!.n;
}

async function pidOf(conn: PooledConnection): Promise<number> {
  const result = await conn.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return result.rows[0]!.pid;
}

/** Polls until `check` holds; the deadline guards against a hang on a loaded machine. */
async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await waitUntil(check, { timeoutMs, message: 'the pool did not reach the expected state' });
}

async function rejection(promise: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = performance.now();
  try {
    await promise;
  } catch (err) {
    return { err, ms: performance.now() - started };
  }
  throw new Error('expected a rejection');
}

/** A clock moved by hand: timers fire only in advance(), in the order they fall due. */
class ManualClock implements Clock {
  #now = 0;
  #timers: { at: number; seq: number; fn: () => void; live: boolean }[] = [];
  #seq = 0;

  now(): number {
    return this.#now;
  }

  schedule(ms: number, fn: () => void): { cancel(): void } {
    const timer = { at: this.#now + ms, seq: this.#seq++, fn, live: true };
    this.#timers.push(timer);
    return { cancel: () => (timer.live = false) };
  }

  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const due = this.#timers
        .filter((t) => t.live && t.at <= until)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      due.live = false;
      this.#now = due.at;
      due.fn();
    }
    this.#now = until;
    this.#timers = this.#timers.filter((t) => t.live);
  }
}

describe('NodePool', () => {
  it('rejects impossible options with a ConfigError naming the field', () => {
    const label: NodeLabel = { name: 'p', role: 'primary', host: 'h', port: 1 };
    const build = (o: Partial<NodePoolOptions>) => () =>
      new NodePool(label, { host: 'h', port: 1 }, { ...BASE, ...o });
    expect(build({ minSize: 6 })).toThrow(ConfigError);
    expect(build({ minSize: 6 })).toThrow(/pool\.minSize/);
    expect(build({ maxSize: 0 })).toThrow(/pool\.maxSize/);
    expect(build({ connectTimeoutMs: 0 })).toThrow(/pool\.connectTimeoutMs/);
    expect(build({ recycleJitter: 1.5 })).toThrow(/pool\.recycleJitter/);
  });

  it('warm() opens minSize connections', async () => {
    const { pool, app } = makePool({ minSize: 3 });
    await pool.warm();
    expect(pool.figures()).toMatchObject({ total: 3, idle: 3, inUse: 0, pending: 0, created: 3 });
    expect(await backends(app)).toBe(3);
    // Already warm: nothing more to open.
    await pool.warm();
    expect(pool.figures().created).toBe(3);
  });

  it('openAhead() opens one connection when none is open or connecting, and the first acquire takes it', async () => {
    const { pool, app } = makePool();
    pool.openAhead();
    pool.openAhead();
    expect(pool.figures()).toMatchObject({ total: 0, pending: 1 });
    const lease = await pool.acquire();
    // The acquire adopted the connect in progress instead of opening its own.
    expect(pool.figures()).toMatchObject({ total: 1, inUse: 1, pending: 0, created: 1 });
    expect(await backends(app)).toBe(1);
    pool.openAhead();
    expect(pool.figures().pending).toBe(0);
    lease.release();
  });

  it('reuses the same backend across acquire/release; release is idempotent', async () => {
    const { pool } = makePool();
    const a = await pool.acquire();
    const pid = await pidOf(a);
    expect(pool.figures()).toMatchObject({ total: 1, inUse: 1, idle: 0 });
    a.release();
    a.release();
    expect(pool.figures()).toMatchObject({ total: 1, inUse: 0, idle: 1 });
    const b = await pool.acquire();
    expect(await pidOf(b)).toBe(pid);
    b.release();
    expect(pool.figures()).toMatchObject({ created: 1, destroyed: 0 });
  });

  it('release(err) and a release inside an open transaction destroy the connection', async () => {
    const { pool, app } = makePool();
    const a = await pool.acquire();
    const pidA = await pidOf(a);
    a.release(new Error('broken'));
    expect(pool.figures()).toMatchObject({ total: 0, destroyed: 1 });

    const b = await pool.acquire();
    const pidB = await pidOf(b);
    expect(pidB).not.toBe(pidA);
    await b.client.query('BEGIN');
    b.release();
    expect(pool.figures()).toMatchObject({ total: 0, destroyed: 2 });

    const c = await pool.acquire();
    expect(await pidOf(c)).not.toBe(pidB);
    c.release();
    await waitFor(async () => (await backends(app)) === 1);
  });

  it('respects maxSize + overflow under 50 concurrent acquires and closes overflow when idle', async () => {
    const { pool, app } = makePool({ maxSize: 4, overflow: 2 });
    let maxTotal = 0;
    let maxOverflow = 0;
    let maxBackends = 0;
    const sample = () => {
      const f = pool.figures();
      maxTotal = Math.max(maxTotal, f.total + f.pending);
      maxOverflow = Math.max(maxOverflow, f.overflowInUse);
    };
    const work = Array.from({ length: 50 }, async () => {
      const conn = await pool.acquire();
      sample();
      await conn.client.query('SELECT pg_sleep(0.01)');
      sample();
      conn.release();
    });
    // Samples the backend count a few times while the workload runs; the pause only spaces them.
    const watcher = (async () => {
      for (let i = 0; i < 5; i++) {
        maxBackends = Math.max(maxBackends, await backends(app));
        await sleep(5);
      }
    })();
    await Promise.all([...work, watcher]);
    expect(maxTotal).toBe(6);
    expect(maxOverflow).toBe(2);
    expect(maxBackends).toBeLessThanOrEqual(6);
    const f = pool.figures();
    expect(f).toMatchObject({ total: 4, idle: 4, inUse: 0, waiting: 0, overflowInUse: 0 });
    expect(f.created - f.destroyed).toBe(4);
    await waitFor(async () => (await backends(app)) === 4);
  });

  it('closes idle connections above minSize after idleTimeoutMs', async () => {
    const clock = new ManualClock();
    const { pool, app } = makePool({ minSize: 1, idleTimeoutMs: 100, clock });
    const held = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    for (const c of held) c.release();
    expect(pool.figures().idle).toBe(3);
    clock.advance(99);
    expect(pool.figures().idle).toBe(3);
    clock.advance(1);
    // Exactly at the timeout, down to minSize and no further.
    expect(pool.figures()).toMatchObject({ total: 1, idle: 1 });
    clock.advance(10_000);
    expect(pool.figures()).toMatchObject({ total: 1, idle: 1 });
    await waitFor(async () => (await backends(app)) === 1);
  });

  it('closes each idle connection idleTimeoutMs after its own release, one sweep for the stack', async () => {
    const clock = new ManualClock();
    const { pool, app } = makePool({ minSize: 0, idleTimeoutMs: 100, clock });
    const [a, b, c] = await Promise.all([pool.acquire(), pool.acquire(), pool.acquire()]);
    a.release(); // idle from t=0
    clock.advance(30);
    b.release(); // from t=30
    clock.advance(30);
    c.release(); // from t=60
    clock.advance(39); // t=99
    expect(pool.figures().idle).toBe(3);
    clock.advance(1); // t=100: a's time is up, not b's
    expect(pool.figures()).toMatchObject({ total: 2, idle: 2 });
    // Taking one (the most recent, c) and giving it back restarts c's time only.
    const again = await pool.acquire();
    clock.advance(10); // t=110
    again.release(); // c idle from t=110
    clock.advance(19); // t=129
    expect(pool.figures().idle).toBe(2);
    clock.advance(1); // t=130: b's time is up
    expect(pool.figures()).toMatchObject({ total: 1, idle: 1 });
    clock.advance(79); // t=209
    expect(pool.figures().idle).toBe(1);
    clock.advance(1); // t=210: c's
    expect(pool.figures()).toMatchObject({ total: 0, idle: 0 });
    await waitFor(async () => (await backends(app)) === 0);
  });

  it('an exhausted pool rejects with PoolTimeoutError at the deadline, naming the node, without the password', async () => {
    const { pool, label } = makePool({ maxSize: 1, acquireTimeoutMs: 500 });
    const held = await pool.acquire();
    const { err, ms } = await rejection(pool.acquire());
    expect(err).toBeInstanceOf(PoolTimeoutError);
    expect(ms).toBeGreaterThanOrEqual(499);
    // Not before the deadline; after it only by what a loaded machine adds to a timer.
    expect(ms).toBeLessThanOrEqual(1_000);
    const e = err as PoolTimeoutError;
    expect(e.node).toEqual(label);
    expect(e.message).toContain('"primary"');
    expect(e.message).toContain(`127.0.0.1:${label.port}`);
    expect(e.message).toContain('1 in use of 1');
    expect(e.message).toContain('1 waiting');
    expect(e.figures).toMatchObject({ inUse: 1, max: 1, total: 1 });
    expect(isAvailabilityError(e)).toBe(false);
    for (const text of [e.message, inspect(e, { depth: 5 }), JSON.stringify(e), inspect(pool)]) {
      expect(text).not.toContain(password);
    }
    expect(pool.figures()).toMatchObject({ acquireTimeouts: 1, waiting: 0 });
    held.release();
  });

  it('serves waiters first come, first served', async () => {
    const { pool } = makePool({ maxSize: 1 });
    const first = await pool.acquire();
    const order: number[] = [];
    const waits = Array.from({ length: 6 }, (_, i) =>
      pool.acquire().then(async (conn) => {
        order.push(i);
        await conn.client.query('SELECT 1');
        conn.release();
      }),
    );
    await waitFor(() => pool.figures().waiting === 6);
    expect(pool.figures().waiting).toBe(6);
    first.release();
    await Promise.all(waits);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('pre-ping discards a connection whose backend was terminated and acquire still succeeds', async () => {
    const proxy = await cluster.proxy('primary');
    try {
      const { pool } = makePool(
        { prePing: true, prePingAfterIdleMs: 0, acquireTimeoutMs: 5_000 },
        proxy.port,
      );
      const a = await pool.acquire();
      const pid = await pidOf(a);
      a.release();
      // Idle strictly longer than prePingAfterIdleMs (0), so the next acquire pre-pings.
      await sleep(5);
      // A healthy idle connection passes its pre-ping and is reused.
      const b = await pool.acquire();
      expect(await pidOf(b)).toBe(pid);
      b.release();
      expect(pool.figures().prePingFailures).toBe(0);

      // The proxy delays the backend's FATAL message, so the pool cannot learn of the death
      // from an 'error' event first: only the pre-ping can catch it.
      proxy.latency(150);
      await cluster.query('primary', 'SELECT pg_terminate_backend($1)', [pid]);
      const c = await pool.acquire();
      expect(pool.figures().prePingFailures).toBe(1);
      expect(await pidOf(c)).not.toBe(pid);
      c.release();
    } finally {
      proxy.heal();
    }
  });

  it('pre-ping gives a silent connection connectTimeoutMs, then falls back to a new one; a silent node fails at the deadline', async () => {
    const proxy = await cluster.proxy('primary');
    try {
      const { pool } = makePool(
        { prePing: true, prePingAfterIdleMs: 0, connectTimeoutMs: 300, acquireTimeoutMs: 3_000 },
        proxy.port,
      );
      const a = await pool.acquire();
      const pid = await pidOf(a);
      a.release();
      // Idle strictly longer than prePingAfterIdleMs (0), so the next acquire pre-pings.
      await sleep(5);
      proxy.blackhole();
      const started = performance.now();
      const acquiring = pool.acquire();
      // The ping is held past connectTimeoutMs, so that connection stays silent; the new one
      // it falls back to connects once the path is back.
      await waitFor(() => pool.figures().prePingFailures === 1);
      proxy.heal();
      const b = await acquiring;
      const ms = performance.now() - started;
      expect(ms).toBeGreaterThanOrEqual(299);
      expect(ms).toBeLessThan(1_500);
      expect(pool.figures().prePingFailures).toBe(1);
      expect(await pidOf(b)).not.toBe(pid);
      b.release();

      // A node that answers nothing: the pre-ping takes the acquire's whole budget.
      const { pool: slow } = makePool(
        { prePing: true, prePingAfterIdleMs: 0, connectTimeoutMs: 10_000, acquireTimeoutMs: 400 },
        proxy.port,
      );
      (await slow.acquire()).release();
      // Idle strictly longer than prePingAfterIdleMs (0), so the next acquire pre-pings.
      await sleep(5);
      proxy.blackhole();
      const { err, ms: failedAfter } = await rejection(slow.acquire());
      expect(failedAfter).toBeGreaterThanOrEqual(399);
      // At the deadline, not long after it: the slack is for a loaded machine's timers (#11 item 13).
      expect(failedAfter).toBeLessThan(1_400);
      expect(err).toBeInstanceOf(ConnectTimeoutError);
      expect((err as ConnectTimeoutError).phase).toBe('pre-ping');
      await waitFor(() => slow.figures().prePingFailures === 1 && slow.figures().total === 0);
    } finally {
      proxy.heal();
    }
  });

  it('drain() closes idle connections now and in-use ones on release', async () => {
    const { pool, app } = makePool({ minSize: 3 });
    await pool.warm();
    const held = await pool.acquire();
    const heldPid = await pidOf(held);
    pool.drain();
    expect(pool.figures()).toMatchObject({ idle: 0, total: 1, inUse: 1 });
    held.release();
    expect(pool.figures()).toMatchObject({ total: 0, destroyed: 3 });
    const next = await pool.acquire();
    expect(await pidOf(next)).not.toBe(heldPid);
    next.release();
    await waitFor(async () => (await backends(app)) === 1);
  });

  it('drops an idle connection whose backend dies, reporting it to the listener error', async () => {
    const errors: Error[] = [];
    const { pool } = makePool({ minSize: 1 }, undefined, { error: (err) => errors.push(err) });
    await pool.warm();
    const a = await pool.acquire();
    const pid = await pidOf(a);
    a.release();
    await cluster.query('primary', 'SELECT pg_terminate_backend($1)', [pid]);
    await waitFor(() => pool.figures().idle === 0);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(pool.figures().total).toBe(0);
    const b = await pool.acquire();
    expect(await pidOf(b)).not.toBe(pid);
    b.release();
  });

  it('recycles connections after their jittered lifetime and replaces them up to minSize', async () => {
    const randoms = [0, 0.999];
    // lifetime = 200 ms * (1 ± 0.5): 0 -> 100 ms, 0.999 -> ~300 ms, then 0.5 -> 200 ms.
    const clock = new ManualClock();
    const { pool } = makePool({
      minSize: 1,
      recycleSeconds: 0.2,
      recycleJitter: 0.5,
      random: () => randoms.shift() ?? 0.5,
      clock,
    });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const pidA = await pidOf(a);
    const pidB = await pidOf(b);
    clock.advance(150);
    // In use, neither is closed at its lifetime: that waits for the release.
    expect(pool.figures()).toMatchObject({ recycled: 0, total: 2, inUse: 2 });
    b.release();
    a.release();
    // Both are 150 ms old: A (100 ms) is past its lifetime, B (~300 ms) is not.
    expect(pool.figures()).toMatchObject({ recycled: 1, total: 1, idle: 1 });
    // B expires while idle at ~300 ms; it is closed then and a replacement opens for minSize.
    clock.advance(149);
    expect(pool.figures().recycled).toBe(1);
    clock.advance(1);
    expect(pool.figures().recycled).toBe(2);
    await waitFor(() => {
      const f = pool.figures();
      return f.recycled === 2 && f.total === 1 && f.idle === 1;
    }, 2_000);
    const c = await pool.acquire();
    const pidC = await pidOf(c);
    expect([pidA, pidB]).not.toContain(pidC);
    c.release();
  });

  it('a blackholed node fails acquire at the deadline even when connectTimeoutMs is longer', async () => {
    const proxy = await cluster.proxy('primary');
    proxy.blackhole();
    try {
      const { pool } = makePool({ acquireTimeoutMs: 400, connectTimeoutMs: 10_000 }, proxy.port);
      const { err, ms } = await rejection(pool.acquire());
      expect(ms).toBeGreaterThanOrEqual(399);
      expect(ms).toBeLessThanOrEqual(440);
      // The node, not the pool, was at fault: the breaker must be able to count it.
      expect(err).toBeInstanceOf(ConnectTimeoutError);
      expect((err as ConnectTimeoutError).phase).toBe('connect');
      expect((err as Error).message).toContain('"primary"');
      expect(isAvailabilityError(err)).toBe(true);
      expect(pool.figures()).toMatchObject({ acquireTimeouts: 1, pending: 1, waiting: 0 });
      const started = performance.now();
      await pool.end();
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(pool.figures()).toMatchObject({ total: 0, pending: 0 });
    } finally {
      proxy.heal();
    }
  });

  it('end() rejects waiters, refuses new acquires, waits for in-use connections, leaves no backend', async () => {
    const { pool, app } = makePool({ minSize: 2, maxSize: 2 });
    await pool.warm();
    const held = await pool.acquire();
    const other = await pool.acquire();
    other.release();
    const full = await pool.acquire();
    const waiting = pool.acquire();
    expect(pool.figures().waiting).toBe(1);
    let ended = false;
    const ending = pool.end().then(() => {
      ended = true;
    });
    const { err } = await rejection(waiting);
    expect(err).toBeInstanceOf(PoolClosedError);
    expect((err as Error).message).toContain('"primary"');
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolClosedError);
    // A window, not a wait: end() must not settle while connections are still in use.
    await sleep(30);
    expect(ended).toBe(false);
    held.release();
    full.release();
    await ending;
    expect(pool.figures()).toMatchObject({ total: 0, idle: 0, inUse: 0, pending: 0 });
    await waitFor(async () => (await backends(app)) === 0);
  });

  it('survives the node being killed: the listener error, quick ECONNREFUSED for every waiter, recovery after restart', async () => {
    const errors: Error[] = [];
    const { pool } = makePool({ minSize: 2, maxSize: 3 }, undefined, {
      error: (err) => errors.push(err),
    });
    await pool.warm();
    expect(pool.figures().idle).toBe(2);

    await cluster.kill('primary');
    await waitFor(() => pool.figures().idle === 0);
    expect(errors.length).toBeGreaterThanOrEqual(2);

    const started = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => pool.acquire()));
    expect(performance.now() - started).toBeLessThan(1_000);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const reason = (r as PromiseRejectedResult).reason as NodeConnectionError;
      // Typed, with the node and the driver's own error as cause (#11 item 3).
      expect(reason).toBeInstanceOf(NodeConnectionError);
      expect(reason.failure).toBe('refused');
      expect(reason.retriable).toBe(true);
      expect((reason.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
      expect(isAvailabilityError(reason)).toBe(true);
    }
    expect(pool.figures()).toMatchObject({ total: 0, pending: 0, waiting: 0 });

    // Nobody waits on warm-up connects: their failures go to onError, not to a rejection.
    const before = errors.length;
    await pool.warm();
    expect(errors.length).toBe(before + 2);

    await cluster.start('primary');
    const conn = await pool.acquire();
    await conn.client.query('SELECT 1');
    conn.release();
    expect(pool.figures()).toMatchObject({ total: 1, idle: 1 });
  });
});

describe('binary results (pool.binary)', () => {
  // json has no binary parser in pg: as binary it comes back as a string, as text it is parsed.
  const SQL = 'SELECT $1::json AS j';

  it("the application's connections read binary; pgpulse's own leases of them read text", async () => {
    const { pool } = makePool({ binary: true, maxSize: 1 });
    const app = await pool.acquire();
    expect((await app.client.query(SQL, ['{"a":1}'])).rows[0].j).toBe('{"a":1}');
    app.release();
    // The idle connection lent to pgpulse's own work (a slow statement's EXPLAIN).
    const own = await pool.acquireOwn(100);
    expect(own.client).toBe(app.client);
    expect((await own.client.query(SQL, ['{"a":1}'])).rows[0].j).toEqual({ a: 1 });
    own.release();
    // Binary again for the application afterwards.
    const again = await pool.acquire();
    expect((await again.client.query(SQL, ['{"a":1}'])).rows[0].j).toBe('{"a":1}');
    // With the one connection in use, pgpulse's own work opens one outside the pool: text too.
    const outside = await pool.acquireOwn(0);
    expect(outside.client).not.toBe(again.client);
    expect((await outside.client.query(SQL, ['{"a":1}'])).rows[0].j).toEqual({ a: 1 });
    outside.release();
    again.release();
  });
});

describe('idle timeout on the system clock', () => {
  it('a connection idle for idleTimeoutMs is closed by the time a timer set after its release for a moment longer fires', async () => {
    // Node's timers count whole milliseconds of a loop time read once per turn, so the sweep
    // set for a connection's due can fire before performance.now() says it is due: it must
    // close the connection then, not a turn later (pg-pool's own test of this: a 1 ms idle
    // timeout, checked by a 2 ms wait). Ordering of timers, not speed: holds on a loaded machine.
    const { pool } = makePool({ idleTimeoutMs: 1 });
    for (let i = 0; i < 50; i++) {
      const connection = await pool.acquire();
      connection.release();
      await new Promise((resolve) => setTimeout(resolve, 2));
      expect(pool.figures()).toMatchObject({ total: 0, idle: 0 });
    }
  });
});
