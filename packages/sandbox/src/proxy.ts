import {
  type AddressInfo,
  createConnection,
  createServer,
  type Server,
  type Socket,
} from 'node:net';

/**
 * What a FaultProxy does with traffic: `pass` forwards it (after any latency()), `blackhole`
 * holds it until heal().
 */
export type ProxyMode = 'pass' | 'blackhole';

/**
 * A TCP proxy in front of one node that can add latency, swallow traffic or reset connections,
 * so tests see the failures a real network produces rather than clean refusals.
 */
export class FaultProxy {
  readonly host = '127.0.0.1';
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private mode: ProxyMode = 'pass';
  private delayMs = 0;
  private portNumber = 0;
  /** What to run on heal(): held chunks to deliver, accepted clients to connect. */
  private readonly held = new Set<() => void>();

  private constructor(
    private readonly target: () => { host: string; port: number },
    private readonly buildUrl: (host: string, port: number) => string,
  ) {
    this.server = createServer((client) => this.accept(client));
  }

  static async listen(
    target: () => { host: string; port: number },
    buildUrl: (host: string, port: number) => string,
  ): Promise<FaultProxy> {
    const proxy = new FaultProxy(target, buildUrl);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, proxy.host, () => resolve());
    });
    proxy.server.unref();
    proxy.portNumber = (proxy.server.address() as AddressInfo).port;
    return proxy;
  }

  get port(): number {
    return this.portNumber;
  }

  /** A connection URL for the node that goes through this proxy. */
  get url(): string {
    return this.buildUrl(this.host, this.portNumber);
  }

  /** Delays every chunk, in both directions, by `ms`. */
  latency(ms: number): this {
    this.delayMs = Math.max(0, ms);
    return this;
  }

  /**
   * Accepts connections but never answers, and stops forwarding on open ones, as a network
   * partition does. Nothing is lost: TCP never drops bytes from the middle of a live stream (it
   * retransmits), so what is sent meanwhile is held and delivered on heal(), and connections
   * accepted meanwhile reach the node then (if their peer still waits). Dropping the bytes
   * instead would leave both ends out of step in the protocol after heal — a fault no real
   * network produces (it made reads fail with ECONNRESET or hang after heal, issue #11).
   */
  blackhole(): this {
    this.mode = 'blackhole';
    return this;
  }

  /** Resets every open connection (the peer sees ECONNRESET); new ones are accepted. */
  reset(): this {
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    return this;
  }

  /**
   * Back to a transparent proxy: no latency, no blackhole. Open connections stay open and get
   * what was held for them; connections accepted during the blackhole are connected now.
   */
  heal(): this {
    this.mode = 'pass';
    this.delayMs = 0;
    const waiting = [...this.held];
    this.held.clear();
    for (const flush of waiting) flush();
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.track(client);
    if (this.mode === 'blackhole') {
      // Hold what the client sends until heal (a SYN retransmitted until the path is back).
      client.pause();
      const connectLater = () => {
        if (!client.destroyed) this.connect(client);
      };
      this.held.add(connectLater);
      client.once('close', () => this.held.delete(connectLater));
      return;
    }
    this.connect(client);
  }

  private connect(client: Socket): void {
    const { host, port } = this.target();
    const upstream = createConnection({ host, port });
    this.track(upstream);
    const forward = (from: Socket, to: Socket) => {
      let pending: Buffer[] | undefined;
      const flush = () => {
        const chunks = pending ?? [];
        pending = undefined;
        for (const chunk of chunks) to.write(chunk);
        from.resume();
      };
      from.on('data', (chunk: Buffer) => {
        if (this.mode === 'blackhole') {
          // Held, in order, and the sender is paused (its kernel buffers fill, as on a
          // partitioned link) until heal() flushes.
          if (pending === undefined) {
            pending = [];
            this.held.add(flush);
            from.once('close', () => this.held.delete(flush));
          }
          pending.push(chunk);
          from.pause();
          return;
        }
        // Timers of equal delay fire in insertion order, so chunks stay in order.
        if (this.delayMs > 0) setTimeout(() => to.write(chunk), this.delayMs);
        else to.write(chunk);
      });
      from.on('close', () => {
        if (this.delayMs > 0) setTimeout(() => to.destroy(), this.delayMs);
        else to.destroy();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    if (client.isPaused()) client.resume();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }
}
