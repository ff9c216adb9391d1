// The process's one HTTP server: plain HTTP (loopback by default, for a reverse proxy) and
// HTTPS with each host's certificate by SNI, a registry of routes that modules add and remove,
// limits (head size, body size per route, timeouts, connections per IP), security headers on
// every response and one access-log line per request.
//
// node:http and node:https rather than a framework: the routes are a handful of path prefixes,
// bodies are streamed to their handler (uploads go to disk, never into memory), and the limits
// are the server's own options (maxHeaderSize, headersTimeout, requestTimeout); no dependency.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Certificates } from './certificates.js';
import { listenOn } from './listen.js';
import { PerIpCap } from './per-ip.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

/** Takes over a connection asking to upgrade (WebSocket); `secure` when it came in over HTTPS. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean) => void;

/** Who is at the other end of a request: the client, through a trusted proxy when one is in front. */
export interface HttpPeer {
  /** The client's address (X-Forwarded-For's last hop when a trusted proxy forwarded it). */
  ip: string;
  /** HTTPS to this server, or a trusted proxy saying (X-Forwarded-Proto) the client used HTTPS: the scheme of its URLs. */
  https: boolean;
  /** Confidential: over HTTPS, or a client on this machine talking to the server directly. */
  secure: boolean;
}

export interface RouteOptions {
  /** Largest request body in bytes (Content-Length checked before the handler runs); default http.max_body_size. */
  maxBody?: number;
  /** Only the path `prefix` itself, not the paths under it (a route for `/`). */
  exact?: boolean;
}

interface Route {
  methods: ReadonlySet<string>;
  prefix: string;
  handler: HttpHandler;
  maxBody: number;
  exact: boolean;
  owner: string;
}

export interface HttpAddress {
  address: string;
  port: number;
  secure: boolean;
}

/** Headers on every response; a route may override them (an upload's GET sets its own CSP). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

export class HttpServer {
  private readonly routes: Route[] = [];
  private readonly upgrades = new Map<string, UpgradeHandler>();
  /** Upgraded connections (WebSocket) still open, dropped by close() if their owner did not. */
  private readonly upgraded = new Set<Duplex>();
  private readonly servers: net.Server[] = [];
  private readonly perIp: PerIpCap;
  private bound: HttpAddress[] = [];
  private readonly proxies: ReadonlySet<string>;

  constructor(
    private readonly options: Config['http'],
    private readonly certificates: Certificates,
    private readonly log: Logger,
  ) {
    this.proxies = new Set(options.proxies);
    this.perIp = new PerIpCap(options.max_connections_per_ip);
  }

  /**
   * Adds a route: requests whose method is one of `methods` and whose path starts with
   * `prefix` (longest prefix first). Returns the function that removes it.
   */
  route(methods: string | string[], prefix: string, handler: HttpHandler, options: RouteOptions = {}, owner = 'server'): () => void {
    if (!prefix.startsWith('/')) throw new Error(`HTTP route "${prefix}" does not start with /`);
    const set = new Set((Array.isArray(methods) ? methods : [methods]).map((m) => m.toUpperCase()));
    const exact = options.exact ?? false;
    for (const r of this.routes) {
      if (r.prefix === prefix && r.exact === exact && [...set].some((m) => r.methods.has(m))) throw new Error(`HTTP route ${prefix} is served by "${r.owner}" already`);
    }
    const route: Route = { methods: set, prefix, handler, maxBody: options.maxBody ?? this.options.max_body_size, exact, owner };
    this.routes.push(route);
    this.routes.sort((a, b) => b.prefix.length - a.prefix.length);
    return () => {
      const i = this.routes.indexOf(route);
      if (i !== -1) this.routes.splice(i, 1);
    };
  }

  /** Serves upgrade requests (WebSocket) for exactly `path`. Returns the function that removes it. */
  upgrade(path: string, handler: UpgradeHandler): () => void {
    if (this.upgrades.has(path)) throw new Error(`HTTP upgrades at ${path} are served already`);
    this.upgrades.set(path, handler);
    return () => void this.upgrades.delete(path);
  }

  get hasRoutes(): boolean {
    return this.routes.length > 0 || this.upgrades.size > 0;
  }

  /**
   * The client of `req` and whether its connection is confidential, trusted proxies considered.
   * A request from a proxy address (loopback by default) with no forwarding headers at all is a
   * client on this machine talking to the server directly (a browser opening
   * http://localhost:5280/chat): nobody else sees that traffic, so it counts as confidential, as
   * Prosody's secure_interfaces treats loopback. A reverse proxy says whom it forwards for
   * (X-Forwarded-For), and then only X-Forwarded-Proto: https makes the request confidential.
   */
  peer(req: IncomingMessage, secureListener: boolean): HttpPeer {
    const direct = req.socket.remoteAddress ?? '?';
    if (!this.proxies.has(direct.startsWith('::ffff:') ? direct.slice(7) : direct)) return { ip: direct, https: secureListener, secure: secureListener };
    const forwardedFor = headerValue(req.headers['x-forwarded-for']).split(',').pop()?.trim();
    const forwardedProto = headerValue(req.headers['x-forwarded-proto']).split(',').pop()?.trim().toLowerCase();
    if (!forwardedFor && !forwardedProto) return { ip: direct, https: secureListener, secure: true };
    const https = secureListener || forwardedProto === 'https';
    return { ip: forwardedFor || direct, https, secure: https };
  }

  get addresses(): readonly HttpAddress[] {
    return this.bound;
  }

  /**
   * The base URL clients reach `domain`'s HTTP at, without a trailing slash: http.external_url
   * when set, else https://<domain>:<the HTTPS port bound> (or the plain one when no HTTPS).
   */
  baseUrl(domain: string): string {
    if (this.options.external_url) return this.options.external_url.replace(/\/+$/, '');
    const secure = this.bound.find((a) => a.secure);
    if (secure) return `https://${domain}:${secure.port}`;
    const plain = this.bound.find((a) => !a.secure);
    return `http://${domain}:${plain?.port ?? this.options.port}`;
  }

  /** Opens the listeners; throws the first listening error (with address and port on it). */
  async listen(): Promise<HttpAddress[]> {
    const o = this.options;
    const common = {
      maxHeaderSize: o.max_header_size,
      headersTimeout: o.headers_timeout * 1000,
      requestTimeout: o.request_timeout * 1000,
      keepAliveTimeout: o.keep_alive_timeout * 1000,
    };
    const handler = (req: IncomingMessage, res: ServerResponse) => this.handle(req, res);
    const plans: { address: string; port: number; secure: boolean }[] = [
      ...o.interfaces.map((address) => ({ address, port: o.port, secure: false })),
      ...o.https_interfaces.map((address) => ({ address, port: o.https_port, secure: true })),
    ];
    for (const plan of plans) {
      const server = plan.secure ? https.createServer({ ...this.certificates.serverOptions(), ...common }, handler) : http.createServer(common, handler);
      server.on('connection', (socket: net.Socket) => this.admit(socket));
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head, plan.secure));
      server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => this.clientError(err, socket));
      if (plan.secure) {
        server.on('tlsClientError', () => {});
        this.certificates.follow(server as https.Server);
      }
      try {
        await listenOn(server, plan.address, plan.port);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') {
          this.log.warn({ address: plan.address, port: plan.port }, 'address not available, skipped');
          continue;
        }
        Object.assign(err as object, { address: plan.address, port: plan.port, secure: plan.secure });
        throw err;
      }
      this.servers.push(server);
      const info = server.address() as net.AddressInfo;
      this.bound.push({ address: info.address, port: info.port, secure: plan.secure });
    }
    if (this.bound.length) this.log.info({ addresses: this.bound }, 'HTTP listening');
    return this.bound;
  }

  async close(): Promise<void> {
    const servers = this.servers.splice(0);
    for (const socket of this.upgraded) socket.destroy();
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            (s as http.Server).closeAllConnections?.();
          }),
      ),
    );
    this.bound = [];
  }

  /** The per-IP connection cap: one more connection than allowed is closed at once. */
  private admit(socket: net.Socket): void {
    const ip = socket.remoteAddress ?? '?';
    if (this.proxies.has(ip.startsWith('::ffff:') ? ip.slice(7) : ip)) return;
    if (this.perIp.admit(socket)) return;
    this.log.debug({ ip }, 'HTTP connection refused: too many from this address');
    socket.destroy();
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    let path = '/';
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      // a malformed request target: no route
    }
    const handler = this.upgrades.get(path);
    this.log.info({ ip: req.socket.remoteAddress, method: 'UPGRADE', route: handler ? path : null }, 'HTTP upgrade request');
    socket.on('error', (err: NodeJS.ErrnoException) => this.log.debug({ err: err.message, code: err.code }, 'upgraded connection error'));
    if (!handler) return refuseUpgrade(socket, 404);
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
    try {
      handler(req, socket, head, secure);
    } catch (err) {
      this.log.error({ err, route: path }, 'HTTP upgrade handler failed');
      refuseUpgrade(socket, 500);
    }
  }

  private clientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const reason = http.STATUS_CODES[status] ?? 'Bad Request';
    this.log.debug({ ip: socket.remoteAddress, status, code: err.code }, 'HTTP request refused');
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      url = new URL('http://localhost/');
    }
    const method = (req.method ?? 'GET').toUpperCase();
    const matching = this.routes.filter((r) => (r.exact ? url.pathname === r.prefix : url.pathname.startsWith(r.prefix)));
    const route = matching.find((r) => r.methods.has(method) || (method === 'HEAD' && r.methods.has('GET')));
    res.once('finish', () => {
      // The access log names the route, never the path or query: upload URLs are capabilities.
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      this.log.info(
        { ip: req.socket.remoteAddress, method, route: route?.prefix ?? null, status: res.statusCode, bytesIn: req.socket.bytesRead, ms: Math.round(ms) },
        'HTTP request',
      );
    });
    if (!route) {
      if (matching.length > 0) {
        res.setHeader('Allow', [...new Set(matching.flatMap((r) => [...r.methods]))].join(', '));
        return sendStatus(res, 405);
      }
      return sendStatus(res, 404);
    }
    const length = req.headers['content-length'];
    if (length !== undefined && Number(length) > route.maxBody) {
      res.setHeader('Connection', 'close');
      return sendStatus(res, 413);
    }
    if (length === undefined && req.headers['transfer-encoding'] !== undefined) {
      // A chunked body: counted while it arrives, and cut off past the route's limit.
      let seen = 0;
      req.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > route.maxBody && !res.headersSent) {
          res.setHeader('Connection', 'close');
          sendStatus(res, 413);
          req.destroy();
        }
      });
    }
    Promise.resolve()
      .then(() => route.handler(req, res, url))
      .catch((err: unknown) => {
        this.log.error({ err, route: route.prefix, owner: route.owner }, 'HTTP handler failed');
        if (!res.headersSent) sendStatus(res, 500);
        else res.destroy();
      });
  }
}

/** A header's value as one string ('' when absent). */
function headerValue(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join(',') : (value ?? '');
}

/** Refuses an upgrade request on its raw socket with `status`, and closes it. */
export function refuseUpgrade(socket: Duplex, status: number, text?: string): void {
  const body = `${text ?? http.STATUS_CODES[status] ?? String(status)}\n`;
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** A short plain-text answer with the status's reason. */
export function sendStatus(res: ServerResponse, status: number, text?: string): void {
  if (res.headersSent) return void res.end();
  const body = `${text ?? http.STATUS_CODES[status] ?? String(status)}\n`;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
