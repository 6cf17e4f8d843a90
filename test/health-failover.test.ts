import { type SandboxCluster, startCluster } from '@pgpulse/sandbox';
import {
  closeAfterEach,
  nextEvent,
  sleep,
  waitForRounds,
  waitUntil,
} from '@pgpulse/sandbox/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Cluster,
  createCluster,
  NoHealthyReplicaError,
  type PgPulseConfig,
} from '../packages/core/src/index.js';

const INTERVAL = 100;
let sandbox: SandboxCluster | undefined;
let cluster: Cluster | undefined;

const track = closeAfterEach(afterEach);

async function setup(options: { synchronous?: boolean } = {}, config: Partial<PgPulseConfig> = {}) {
  sandbox = track(await startCluster({ replicas: 2, synchronous: options.synchronous ?? false }));
  await sandbox.query('primary', 'CREATE TABLE events (id serial PRIMARY KEY, note text)');
  await sandbox.waitForReplay();
  cluster = track(
    createCluster({
      primary: sandbox.primary.url,
      replicas: sandbox.replicas.map((r) => r.url),
      health: { intervalMs: INTERVAL, timeoutMs: 300, maxConsecutiveFailures: 2 },
      circuitBreaker: { failureThreshold: 2, resetTimeoutMs: 300 },
      pool: { acquireTimeoutMs: 2000, connectTimeoutMs: 500 },
      ...config,
    }),
  );
  await cluster.ready();
  return { sandbox, cluster };
}

async function port(c: Cluster): Promise<number> {
  const { rows } = await c.pool.query<{ port: number }>('SELECT inet_server_port() AS port');
  return rows[0]!.port;
}

async function count(s: SandboxCluster, node: string): Promise<number> {
  const rows = await s.query<{ n: string }>(node, 'SELECT count(*) AS n FROM events');
  return Number(rows[0]!.n);
}

/** Reads in a loop, as its own context (another request), until stopped; collects errors. */
function readLoop(c: Cluster) {
  const errors: unknown[] = [];
  let reads = 0;
  let running = true;
  const done = c.context(async () => {
    while (running) {
      try {
        await c.pool.query('SELECT count(*) FROM events');
        reads++;
      } catch (err) {
        errors.push(err);
      }
      // Paces the workload that runs through the outage; nothing waits on it.
      await sleep(2);
    }
  });
  return {
    errors,
    get reads() {
      return reads;
    },
    stop: async () => {
      running = false;
      await done;
    },
  };
}

describe('failover', () => {
  it('external: follows a promotion made by the HA system; no write reaches another node; reads continue', async () => {
    const { sandbox: s, cluster: c } = await setup();
    const completed: unknown[] = [];
    c.on('failover-completed', (e) => completed.push(e));
    await c.pool.query("INSERT INTO events (note) VALUES ('before')");
    // Replication is asynchronous here: without this, a crash right after the insert may lose it
    // on the promoted node (the failover-completed event reports that window).
    await s.waitForReplay();
    const reader = readLoop(c);

    const killedAt = performance.now();
    await s.kill('primary');
    // An outage window on purpose: the read loop runs through it and the write below lands in it.
    await sleep(300);
    // Writes in the window fail fast with a retriable error, never hang.
    const t0 = performance.now();
    const windowError = await c.pool
      .query("INSERT INTO events (note) VALUES ('window')")
      .catch((e: unknown) => e);
    expect((windowError as { retriable?: boolean }).retriable).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2500);

    await s.promote('replica1');
    const promotedAt = performance.now();
    await s.follow('replica2', 'replica1');
    let firstWriteAt: number | undefined;
    try {
      await waitUntil(
        async () => {
          await c.pool.query("INSERT INTO events (note) VALUES ('after')");
          firstWriteAt = performance.now();
          return true;
        },
        {
          timeoutMs: 10_000,
          intervalMs: 20,
          retryErrors: true,
          message: 'no write succeeded after the promotion',
        },
      );
    } finally {
      await reader.stop();
    }
    expect(firstWriteAt).toBeGreaterThan(promotedAt);
    const writeResumeMs = firstWriteAt! - promotedAt;
    console.log(
      `external failover: write unavailable ${(firstWriteAt! - killedAt).toFixed(0)} ms (kill→first write), ` +
        `first write ${writeResumeMs.toFixed(0)} ms after promotion; reads during window: ${reader.reads}, read errors: ${reader.errors.length}`,
    );
    // Writes resumed (the wait above gives up at 10 s); how fast is printed, not asserted: a
    // loaded machine stretches it (#11 item 13).
    expect(writeResumeMs).toBeLessThan(10_000);
    expect(reader.errors.map(String)).toEqual([]);
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      from: 'primary',
      to: 'replica-1',
      timeline: 2,
      promotedBy: 'external',
    });
    // The row landed on the new primary only; the window write was never sent anywhere.
    const rows = await s.query<{ note: string }>('replica1', 'SELECT note FROM events ORDER BY id');
    expect(rows.map((r) => r.note)).toEqual(['before', 'after']);
    expect(c.stats().nodes.find((n) => n.name === 'replica-1')!.role).toBe('primary');
  });

  it('external: a standby promoted by the HA system serves reads before the health round that elects it ends', async () => {
    // The round that would elect the promoted standby waits for the old primary's probe, which
    // a blackhole holds for the whole probe timeout: reads must not fail meanwhile.
    sandbox = track(await startCluster({ replicas: 2 }));
    const s = sandbox;
    const proxy = await s.proxy('primary');
    cluster = track(
      createCluster({
        primary: proxy.url,
        replicas: s.replicas.map((r) => r.url),
        health: { intervalMs: INTERVAL, timeoutMs: 3000, maxConsecutiveFailures: 1 },
        pool: { acquireTimeoutMs: 2000, connectTimeoutMs: 500 },
      }),
    );
    const c = cluster;
    await c.ready();
    const replica1Port = s.replicas[0]!.port;
    const node = (name: string) => c.stats().nodes.find((n) => n.name === name)!;
    await s.stopNode('replica2');
    await s.kill('primary');
    // Refused through the proxy: both are down within a round or two.
    await waitUntil(() => !node('primary').up && !node('replica-2').up, {
      message: 'primary and replica-2 not seen down',
    });
    proxy.blackhole();
    await s.promote('replica1');
    await waitUntil(() => node('replica-1').writable === true, {
      timeoutMs: 10_000,
      message: 'the promoted standby was never probed writable',
    });
    expect(node('replica-1').role).toBe('replica');
    const { rows } = await c.context(() =>
      c.pool.query<{ port: number }>('SELECT inet_server_port() AS port'),
    );
    // Still inside the round: the read was served by the promoted standby, not refused.
    expect(node('replica-1').role).toBe('replica');
    expect(rows[0]!.port).toBe(replica1Port);
    await proxy.close();
  });

  it('automatic: pgpulse promotes the most advanced replica; with synchronous replication no acknowledged write is lost', async () => {
    const { sandbox: s, cluster: c } = await setup(
      { synchronous: true },
      {
        failover: { promotion: 'automatic' },
      },
    );
    let acknowledged = 0;
    let failed = 0;
    let running = true;
    const writer = (async () => {
      while (running) {
        try {
          await c.pool.query("INSERT INTO events (note) VALUES ('w')");
          acknowledged++;
        } catch {
          failed++;
          // Backs off the workload between failed writes; nothing waits on it.
          await sleep(10);
        }
      }
    })();
    await waitUntil(() => acknowledged > 0, { message: 'no write was acknowledged' });
    const completed = new Promise<{ to: string; durationMs?: number; promotedBy: string }>(
      (resolve) => c.once('failover-completed', resolve),
    );
    const killedAt = performance.now();
    await s.kill('primary');
    const event = await completed;
    expect(event.promotedBy).toBe('pgpulse');
    const promoted = event.to === 'replica-1' ? 'replica1' : 'replica2';
    const other = promoted === 'replica1' ? 'replica2' : 'replica1';
    // The HA part pgpulse does not do: re-point the other standby so synchronous commits can finish.
    await s.follow(other, promoted);
    const ackBefore = acknowledged;
    try {
      await waitUntil(() => acknowledged > ackBefore, {
        timeoutMs: 10_000,
        message: 'no write was acknowledged after the failover',
      });
    } finally {
      running = false;
      await writer;
    }
    const rows = await count(s, promoted);
    console.log(
      `automatic failover: promoted ${event.to} ${(performance.now() - killedAt).toFixed(0)} ms after the kill ` +
        `(detection→election ${event.durationMs?.toFixed(0)} ms); acknowledged ${acknowledged}, failed ${failed}, rows on new primary ${rows}`,
    );
    expect(acknowledged).toBeGreaterThan(ackBefore);
    // Every acknowledged insert is there; an insert whose answer was lost may be there too.
    expect(rows).toBeGreaterThanOrEqual(acknowledged);
    expect(rows).toBeLessThanOrEqual(acknowledged + failed);
  });

  it('an old primary restarted writable after a failover receives no writes and no reads', async () => {
    const { sandbox: s, cluster: c } = await setup();
    await s.kill('primary');
    await s.promote('replica1');
    await s.follow('replica2', 'replica1');
    await c.failover.waitForPrimary(5000);
    await s.start('primary'); // comes back on its own timeline, writable: split brain
    await waitForRounds(() => c.stats().probeRounds, 4);
    const before = await count(s, 'primary');
    const servedBefore = c.stats().nodes.find((n) => n.name === 'primary')!.counters.queries;
    for (let i = 0; i < 50; i++) await c.pool.query("INSERT INTO events (note) VALUES ('x')");
    const ports = new Set<number>();
    for (let i = 0; i < 50; i++) ports.add(await port(c));
    expect(await count(s, 'primary')).toBe(before);
    expect(await count(s, 'replica1')).toBeGreaterThanOrEqual(50);
    expect(ports.has(s.node('primary').port)).toBe(false);
    const old = c.stats().nodes.find((n) => n.name === 'primary')!;
    expect(old.role).toBe('replica');
    expect(old.counters.queries).toBe(servedBefore);
  });

  it('manual: promotes the named standby and routes writes to it', async () => {
    const { sandbox: s, cluster: c } = await setup({}, { failover: { promotion: 'manual' } });
    await s.kill('primary');
    await waitUntil(() => !c.stats().nodes.find((n) => n.name === 'primary')?.up, {
      message: 'the killed primary was not seen down',
    });
    await c.failover.manual({ host: '127.0.0.1', port: s.node('replica2').port });
    await c.pool.query("INSERT INTO events (note) VALUES ('manual')");
    expect(await count(s, 'replica2')).toBe(1);
  });

  it('semi-automatic: offers a candidate and promotes only on approve()', async () => {
    const { sandbox: s, cluster: c } = await setup(
      {},
      { failover: { promotion: 'semi-automatic' } },
    );
    const offered = new Promise<{ candidate: string; approve(): Promise<void> }>((resolve) =>
      c.once('failover-candidate', resolve),
    );
    await s.kill('primary');
    const offer = await offered;
    await waitForRounds(() => c.stats().probeRounds, 3); // time for a wrong promotion to show
    const [r1] = await s.query<{ r: boolean }>('replica1', 'SELECT pg_is_in_recovery() AS r');
    const [r2] = await s.query<{ r: boolean }>('replica2', 'SELECT pg_is_in_recovery() AS r');
    expect(r1!.r && r2!.r).toBe(true); // nothing promoted yet
    await offer.approve();
    await c.pool.query("INSERT INTO events (note) VALUES ('approved')");
    const promoted = offer.candidate === 'replica-1' ? 'replica1' : 'replica2';
    expect(await count(s, promoted)).toBe(1);
  });
});

describe('replica lag', () => {
  it('pauseReplay: the replica gets no reads within 2 probe intervals, and rejoins after resume', async () => {
    const { sandbox: s, cluster: c } = await setup(
      {},
      {
        replicaLag: { maxLagMs: 150, policy: 'fallback' },
        consistency: { level: 'eventual' },
      },
    );
    const lagEvents: unknown[] = [];
    c.on('lag', (e) => lagEvents.push(e));
    const lagOf = (over: boolean) =>
      nextEvent<[{ node: string; over: boolean }]>(c, 'lag', {
        timeoutMs: 30_000,
        where: (e) => e.node === 'replica-1' && e.over === over,
      });
    const over = lagOf(true);
    await s.pauseReplay('replica1');
    const writer = setInterval(
      () => void c.pool.query("INSERT INTO events (note) VALUES ('tick')").catch(() => {}),
      10,
    );
    try {
      // Out of rotation from the probe that saw it past the limit (an event, not a guessed delay).
      await over;
      const ports = new Set<number>();
      for (let i = 0; i < 40; i++) ports.add(await port(c));
      expect(ports.has(s.node('replica1').port)).toBe(false);
      expect(ports.has(s.node('replica2').port)).toBe(true);
      const caughtUp = lagOf(false);
      await s.resumeReplay('replica1');
      await caughtUp;
      const after = new Set<number>();
      for (let i = 0; i < 40; i++) after.add(await port(c));
      expect(after.has(s.node('replica1').port)).toBe(true);
      expect(lagEvents).toEqual([
        expect.objectContaining({ node: 'replica-1', over: true }),
        expect.objectContaining({ node: 'replica-1', over: false }),
      ]);
    } finally {
      clearInterval(writer);
    }
  });

  it.each(['fallback', 'least-lagged', 'error'] as const)(
    'every replica lagging: policy %s decides, and the primary gets only what it says',
    async (policy) => {
      const { sandbox: s, cluster: c } = await setup(
        {},
        {
          replicaLag: { maxLagMs: 100, policy },
          consistency: { level: 'eventual' },
        },
      );
      await s.pauseReplay('replica1');
      await s.pauseReplay('replica2');
      const writer = setInterval(
        () => void c.pool.query("INSERT INTO events (note) VALUES ('t')").catch(() => {}),
        10,
      );
      try {
        await waitUntil(
          () =>
            c
              .stats()
              .nodes.filter((n) => n.role === 'replica')
              .every((n) => n.lagging),
          { timeoutMs: 30_000, message: 'the paused replicas were not seen lagging' },
        );
        const primaryPort = s.primary.port;
        const results = { primary: 0, replica: 0, errors: 0 };
        for (let i = 0; i < 30; i++) {
          try {
            (await port(c)) === primaryPort ? results.primary++ : results.replica++;
          } catch (err) {
            expect(err).toBeInstanceOf(NoHealthyReplicaError);
            results.errors++;
          }
        }
        console.log(`all replicas lagging, policy ${policy}:`, results);
        if (policy === 'fallback') expect(results).toEqual({ primary: 30, replica: 0, errors: 0 });
        if (policy === 'least-lagged')
          expect(results).toEqual({ primary: 0, replica: 30, errors: 0 });
        if (policy === 'error') expect(results).toEqual({ primary: 0, replica: 0, errors: 30 });
      } finally {
        clearInterval(writer);
      }
    },
  );

  it('an idle primary for longer than the lag limit does not make replicas look lagging', async () => {
    const { cluster: c } = await setup({}, { replicaLag: { maxLagMs: 200 } });
    await c.pool.query("INSERT INTO events (note) VALUES ('last write')");
    // The primary must stay idle for longer than maxLagMs: a duration, not an event.
    await sleep(1000);
    for (const node of c.stats().nodes.filter((n) => n.role === 'replica')) {
      expect(node.lagging).toBe(false);
      expect(node.lagMs).toBe(0);
      expect(node.lagBytes).toBe(0);
    }
  });

  it('a blackholed replica never makes a query wait longer than the configured timeouts', async () => {
    sandbox = track(await startCluster({ replicas: 2 }));
    const proxy = await sandbox.proxy('replica1');
    cluster = track(
      createCluster({
        primary: sandbox.primary.url,
        replicas: [proxy.url, sandbox.replicas[1]!.url],
        health: { intervalMs: INTERVAL, timeoutMs: 200, maxConsecutiveFailures: 2 },
        pool: { acquireTimeoutMs: 500, connectTimeoutMs: 300, prePingAfterIdleMs: 0 },
        consistency: { level: 'eventual' },
      }),
    );
    await cluster.ready();
    proxy.blackhole();
    let slowest = 0;
    let errors = 0;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      try {
        await cluster.pool.query('SELECT 1');
      } catch {
        errors++;
      }
      slowest = Math.max(slowest, performance.now() - t0);
    }
    console.log(
      `blackholed replica: slowest of 200 reads ${slowest.toFixed(0)} ms, errors ${errors}`,
    );
    // One read may pay the connect timeout of the blackholed node before its retry elsewhere.
    expect(slowest).toBeLessThan(500 + 300 + 100);
    expect(errors).toBe(0);
    const r1 = cluster.stats().nodes.find((n) => n.name === 'replica-1')!;
    expect(r1.up).toBe(false);
  });
});

describe('read-your-writes', () => {
  it('1,000 write-then-read iterations in one context with delayed replicas give 0 stale reads', async () => {
    const { sandbox: s, cluster: c } = await setup();
    await s.setApplyDelay('replica1', 300);
    await s.setApplyDelay('replica2', 300);
    let stale = 0;
    let fromReplica = 0;
    const replicaPorts = new Set(s.replicas.map((r) => r.port));
    await c.context(async () => {
      for (let i = 0; i < 1000; i++) {
        const { rows } = await c.pool.query<{ id: number }>(
          'INSERT INTO events (note) VALUES ($1) RETURNING id',
          [`i${i}`],
        );
        const id = rows[0]!.id;
        const read = await c.pool.query<{ n: string; port: number }>(
          'SELECT count(*) AS n, inet_server_port() AS port FROM events WHERE id = $1',
          [id],
        );
        if (read.rows[0]!.n !== '1') stale++;
        if (replicaPorts.has(read.rows[0]!.port)) fromReplica++;
      }
    });
    console.log(
      `read-your-writes with 300 ms apply delay: 1000 iterations, stale ${stale}, served by replicas ${fromReplica}`,
    );
    expect(stale).toBe(0);
  });

  it('on healthy replicas, reads made later than the delay still go to replicas; other contexts are unaffected', async () => {
    const { sandbox: s, cluster: c } = await setup();
    const replicaPorts = new Set(s.replicas.map((r) => r.port));
    let later = 0;
    let laterOnReplica = 0;
    let otherOnReplica = 0;
    await c.context(async () => {
      for (let round = 0; round < 5; round++) {
        await c.pool.query("INSERT INTO events (note) VALUES ('w')");
        // Another request, running meanwhile, keeps reading from replicas.
        const other = await c.context(() => port(c));
        if (replicaPorts.has(other)) otherOnReplica++;
        // The reads must come later than the delay: the elapsed time is what is tested.
        await sleep(6 * INTERVAL);
        for (let i = 0; i < 20; i++) {
          later++;
          if (replicaPorts.has(await port(c))) laterOnReplica++;
        }
      }
    });
    console.log(
      `reads made ${6 * INTERVAL} ms after a write: ${laterOnReplica}/${later} on replicas; other contexts on replicas ${otherOnReplica}/5`,
    );
    expect(laterOnReplica / later).toBeGreaterThan(0.9);
    expect(otherOnReplica).toBe(5);
  });

  it("with replicaLag.policy 'error', a read after the context's own write goes to the primary, not to an error", async () => {
    const { sandbox: s, cluster: c } = await setup({}, { replicaLag: { policy: 'error' } });
    await s.setApplyDelay('replica1', 1000);
    await s.setApplyDelay('replica2', 1000);
    await c.context(async () => {
      await c.pool.query("INSERT INTO events (note) VALUES ('strict')");
      const { rows } = await c.pool.query<{ n: string; port: number }>(
        "SELECT count(*) AS n, inet_server_port() AS port FROM events WHERE note = 'strict'",
      );
      expect(rows[0]).toEqual({ n: '1', port: s.primary.port });
    });
    expect(c.stats().routing['read-your-writes']).toBeGreaterThanOrEqual(1);
  });

  it('a write inside a top-level primary() scope still counts for the reads after it', async () => {
    const { sandbox: s, cluster: c } = await setup();
    await s.setApplyDelay('replica1', 1000);
    await s.setApplyDelay('replica2', 1000);
    await c.primary(() => c.pool.query("INSERT INTO events (note) VALUES ('scoped')"));
    const { rows } = await c.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM events WHERE note = 'scoped'",
    );
    expect(rows[0]!.n).toBe('1');
    await c.withConsistency('read-your-writes', () =>
      c.pool.query("INSERT INTO events (note) VALUES ('again')"),
    );
    const again = await c.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM events WHERE note = 'again'",
    );
    expect(again.rows[0]!.n).toBe('1');
  });

  it('a consistency token carries read-your-writes across contexts (e.g. HTTP requests)', async () => {
    const { sandbox: s, cluster: c } = await setup();
    await s.setApplyDelay('replica1', 400);
    await s.setApplyDelay('replica2', 400);
    const token = await c.context(async () => {
      await c.pool.query("INSERT INTO events (note) VALUES ('carried')");
      return c.consistencyToken();
    });
    expect(token).toMatch(/^pgpulse:2:[0-9A-F]+\/[0-9A-F]+:/);
    const seen = await c.withConsistencyToken(token, () =>
      c.pool.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE note = 'carried'"),
    );
    expect(seen.rows[0]!.n).toBe('1');
    // Without the token a fresh context may read from a delayed replica (eventual).
    expect(() => c.withConsistencyToken('garbage', () => 1)).toThrow(/consistency token/);
  });

  it('reads in one context never go back in time (monotonic), even across replicas', async () => {
    const { sandbox: s, cluster: c } = await setup({}, { loadBalancing: 'round-robin' });
    await s.setApplyDelay('replica2', 500);
    const writer = setInterval(
      () =>
        void c
          .replica(() => c.pool.query("INSERT INTO events (note) VALUES ('m')"))
          .catch(() => {}),
      5,
    );
    let backwards = 0;
    try {
      await c.context(async () => {
        let last = 0;
        for (let i = 0; i < 300; i++) {
          const { rows } = await c.pool.query<{ n: string }>('SELECT count(*) AS n FROM events');
          const n = Number(rows[0]!.n);
          if (n < last) backwards++;
          last = Math.max(last, n);
          // Spreads the 300 reads over the writer's activity; nothing waits on it.
          await sleep(2);
        }
      });
    } finally {
      clearInterval(writer);
    }
    expect(backwards).toBe(0);
  });

  it('time-window mode keeps a writing context on the primary for the window', async () => {
    const { sandbox: s, cluster: c } = await setup(
      {},
      { consistency: { mode: 'time-window', windowMs: 300 } },
    );
    await c.context(async () => {
      await c.pool.query("INSERT INTO events (note) VALUES ('tw')");
      expect(await port(c)).toBe(s.primary.port);
      // The 300 ms window must be over: the elapsed time is what is tested.
      await sleep(350);
      expect(await port(c)).not.toBe(s.primary.port);
    });
  });
});
