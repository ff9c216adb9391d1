// The c2s listeners: TCP with STARTTLS (5222) and direct TLS (5223, XEP-0368), a cap on
// unauthenticated connections per IP, and the list of open sessions for a clean shutdown.
import net from 'node:net';
import tls from 'node:tls';
import type { ServerCore } from '../module-api/core.js';
import { StreamError } from '../stream/errors.js';
import { ClientSession, clientLimits } from './client-session.js';
import { listenOn } from '../net/listen.js';
import { XmlStream } from '../stream/xml-stream.js';
import type { TransportFactory } from '../stream/transport.js';
import { NS } from '../xml/namespaces.js';

export interface BoundAddress {
  address: string;
  port: number;
  directTls: boolean;
}

export class C2sListeners {
  private readonly servers: net.Server[] = [];
  readonly sessions = new Set<ClientSession>();
  private readonly unauthenticated = new Map<string, number>();
  private readonly pending = new WeakSet<ClientSession>();
  private drained: (() => void) | undefined;

  constructor(private readonly core: ServerCore) {}

  /** Authenticated sessions with a bound resource, by transport (for /metrics). */
  boundByTransport(): Record<string, number> {
    const counts: Record<string, number> = { tcp: 0, websocket: 0, bosh: 0 };
    for (const session of this.sessions) if (session.jid && !session.closed) counts[session.transportKind]! += 1;
    return counts;
  }

  /** Opens every configured listener; resolves with the addresses actually bound. */
  async listen(): Promise<BoundAddress[]> {
    const bound: BoundAddress[] = [];
    for (const listener of this.core.config.c2s.listeners) {
      for (const address of listener.interfaces) {
        const server = listener.direct_tls
          ? tls.createServer(this.core.certificates.serverOptions(), (socket) => this.accept(socket, true))
          : net.createServer((socket) => this.accept(socket, false));
        if (listener.direct_tls) {
          this.core.certificates.follow(server as tls.Server);
          server.on('tlsClientError', (err, socket) => {
            this.core.log.debug({ err: err.message, ip: socket.remoteAddress }, 'TLS handshake failed');
          });
        }
        try {
          await listenOn(server, address, listener.port);
        } catch (err) {
          // One address family missing (no IPv6 here) is not worth failing the start for.
          if ((err as NodeJS.ErrnoException).code === 'EAFNOSUPPORT' || (err as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') {
            this.core.log.warn({ address, port: listener.port }, 'address not available, skipped');
            continue;
          }
          throw err;
        }
        this.servers.push(server);
        const info = server.address() as net.AddressInfo;
        bound.push({ address: info.address, port: info.port, directTls: listener.direct_tls });
      }
    }
    return bound;
  }

  private accept(socket: net.Socket, directTls: boolean): void {
    if (!this.admit(socket.remoteAddress ?? '?')) return void socket.destroy();
    socket.setNoDelay(true);
    const limits = clientLimits(this.core);
    this.open(socket.remoteAddress ?? '?', directTls, (log, events) => new XmlStream(socket, limits, NS.CLIENT, log, events));
  }

  /**
   * Whether one more unauthenticated connection from `ip` is allowed (the cap per IP, for every
   * transport); when it is, it counts until open()'s session authenticates or closes.
   */
  admit(ip: string): boolean {
    const count = (this.unauthenticated.get(ip) ?? 0) + 1;
    if (count > this.core.config.c2s.max_unauthenticated_per_ip) {
      this.core.log.warn({ ip }, 'too many unauthenticated connections from this address: refused');
      return false;
    }
    this.unauthenticated.set(ip, count);
    return true;
  }

  /** Starts a client session over `transport`, from `ip` which admit() let in. */
  open(ip: string, directTls: boolean, transport: TransportFactory): ClientSession {
    const session = new ClientSession({
      core: this.core,
      transport,
      remoteAddress: ip,
      directTls,
      onAuthenticated: (s) => this.settle(s),
      onResumed: (s) => this.sessions.add(s),
      onClosed: (s) => {
        this.settle(s);
        this.sessions.delete(s);
        if (this.sessions.size === 0) this.drained?.();
      },
    });
    this.pending.add(session);
    this.sessions.add(session);
    return session;
  }

  /** Ends a session's count as unauthenticated (once). */
  private settle(session: ClientSession): void {
    if (!this.pending.has(session)) return;
    this.pending.delete(session);
    const left = (this.unauthenticated.get(session.remoteAddress) ?? 1) - 1;
    if (left <= 0) this.unauthenticated.delete(session.remoteAddress);
    else this.unauthenticated.set(session.remoteAddress, left);
  }

  /** Stops accepting connections; resolves once the open ones are gone too (see closeAll). */
  stopListening(): Promise<void> {
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.length = 0;
    return closed.then(() => undefined);
  }

  /** Closes every stream with system-shutdown and waits (bounded) for the sockets to go. */
  async closeAll(timeoutMs = 3000): Promise<void> {
    if (this.sessions.size === 0) return;
    const open = [...this.sessions];
    const gone = new Promise<void>((resolve) => (this.drained = resolve));
    for (const s of open) s.close(new StreamError('system-shutdown', 'the server is shutting down'));
    await Promise.race([gone, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    // Teardown (unavailable presence, what modules do at session end) finishes before storage closes.
    await Promise.all(open.map((s) => s.finished));
  }
}
