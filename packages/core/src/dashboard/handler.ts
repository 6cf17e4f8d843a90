import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Cluster } from '../cluster/index.js';
import { ConfigError } from '../errors/index.js';
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.js';
import { SnapshotSource } from './snapshot.js';

/**
 * What the dashboard handler serves: its access token, refresh interval and how often it reads the
 * catalog.
 */
export interface DashboardOptions {
  /**
   * Required on every request when set: `Authorization: Bearer <token>` or `?token=<token>`
   * (the page passes its own `?token=` on). `serveDashboard` insists on one off loopback.
   */
  readonly token?: string;
  /** How often the page gets a new snapshot (default 1 000 ms); alerts are pushed at once. */
  readonly intervalMs?: number;
  /** How often index advice and partition sizes are read on the primary (default 30 000 ms). */
  readonly catalogEveryMs?: number;
}

/** A request handler to mount (`app.use('/pgpulse', dashboard.handle)`), and its shutdown. */
export interface DashboardHandler {
  /** Serves the page, its assets, `api/snapshot` (JSON) and `events` (server-sent events). */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /** Ends every open event stream and the snapshot timer. */
  close(): Promise<void>;
}

const require = createRequire(import.meta.url);
let uplot: { js: string; css: string } | undefined;
function uplotAssets(): { js: string; css: string } {
  uplot ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return uplot;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  // Everything is served from here: no CDN, no inline script.
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
} as const;

/** The dashboard of `cluster` as a mountable handler. */
export function createDashboardHandler(
  cluster: Cluster,
  options: DashboardOptions = {},
): DashboardHandler {
  const intervalMs = options.intervalMs ?? 1_000;
  const source = new SnapshotSource(cluster, options.catalogEveryMs ?? 30_000);
  const streams = new Set<ServerResponse>();
  let timer: NodeJS.Timeout | undefined;
  const expected = options.token === undefined ? undefined : Buffer.from(options.token);

  const push = () => {
    if (streams.size === 0) return;
    const frame = `event: snapshot\ndata: ${JSON.stringify(source.snapshot())}\n\n`;
    for (const res of streams) res.write(frame);
  };
  const onAlert = () => push();

  const authorized = (req: IncomingMessage, url: URL): boolean => {
    if (!expected) return true;
    const header = req.headers.authorization;
    const given = header?.startsWith('Bearer ') ? header.slice(7) : url.searchParams.get('token');
    if (!given) return false;
    const buf = Buffer.from(given);
    return buf.length === expected.length && timingSafeEqual(buf, expected);
  };

  const send = (res: ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type });
    res.end(body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', 'method not allowed\n');
      return;
    }
    if (!authorized(req, url)) {
      send(res, 401, 'text/plain', 'a token is required: ?token=… or Authorization: Bearer …\n');
      return;
    }
    // Mounted under a prefix (Express strips it; a bare server does not): match the tail.
    const path = url.pathname.replace(/\/+$/, '');
    const tail = path.slice(path.lastIndexOf('/') + 1);
    if (path.endsWith('/assets/uplot.iife.min.js'))
      send(res, 200, 'text/javascript', uplotAssets().js);
    else if (path.endsWith('/assets/uplot.min.css')) send(res, 200, 'text/css', uplotAssets().css);
    else if (path.endsWith('/assets/dashboard.js')) send(res, 200, 'text/javascript', PAGE_JS);
    else if (path.endsWith('/assets/dashboard.css')) send(res, 200, 'text/css', PAGE_CSS);
    else if (path.endsWith('/api/snapshot'))
      send(res, 200, 'application/json', JSON.stringify(source.snapshot()));
    else if (tail === 'events') openStream(res);
    else if (!path.includes('/assets/') && !path.includes('/api/')) {
      // The page's links are relative: without a trailing slash they would miss the mount.
      if (url.pathname !== '/' && !url.pathname.endsWith('/')) {
        res.writeHead(308, { location: `${url.pathname}/${url.search}` }).end();
        return;
      }
      send(res, 200, 'text/html; charset=utf-8', PAGE_HTML);
    } else send(res, 404, 'text/plain', 'not found\n');
  };

  const openStream = (res: ServerResponse) => {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    streams.add(res);
    res.write(`event: snapshot\ndata: ${JSON.stringify(source.snapshot())}\n\n`);
    if (!timer) {
      timer = setInterval(push, intervalMs);
      timer.unref();
      cluster.on('alert', onAlert);
    }
    res.on('close', () => {
      streams.delete(res);
      if (streams.size === 0) stopTimer();
    });
  };

  const stopTimer = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    cluster.off('alert', onAlert);
  };

  return {
    handle,
    async close() {
      stopTimer();
      for (const res of streams) res.end();
      streams.clear();
      await source.settle();
    },
  };
}

/** Where `serveDashboard` listens, besides what the handler serves. */
export interface ServeDashboardOptions extends DashboardOptions {
  /** Default 127.0.0.1. Any other address needs `token`. */
  readonly host?: string;
  /** Default 0: any free port. */
  readonly port?: number;
}

/** A running dashboard: its URL, and close() to stop it. */
export interface DashboardServer {
  /** Where to open it (with `?token=` when there is one). */
  readonly url: string;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

/** Serves the dashboard on its own HTTP server; loopback only unless a token is given. */
export async function serveDashboard(
  cluster: Cluster,
  options: ServeDashboardOptions = {},
): Promise<DashboardServer> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host) && !options.token) {
    throw new ConfigError([
      {
        field: 'dashboard.token',
        message: `required when the dashboard listens on ${host} (not loopback): anyone who can reach it would see your cluster`,
      },
    ]);
  }
  const dashboard = createDashboardHandler(cluster, options);
  const server = createServer(dashboard.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const query = options.token ? `?token=${encodeURIComponent(options.token)}` : '';
  return {
    url: `http://${shown}:${port}/${query}`,
    async close() {
      await dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
