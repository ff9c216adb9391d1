// The SOCKS5 side of the XEP-0065 proxy: TCP listeners, the handshake, pairing the two
// connections that name the same hash (the target's, then the initiator's), activation, and the
// relay. Limits: connections per IP, bytestreams relaying at once, a deadline for activation.
import net from 'node:net';
import type { Logger } from '../../src/log.js';
import { listenOn } from '../../src/net/listen.js';
import { PerIpCap } from '../../src/net/per-ip.js';
import { listenError } from '../../src/operator-error.js';
import { holdEarlyBytes, relay, type RelayLimits } from './relay.js';
import { HandshakeError, readRequest, Reply } from './socks5.js';

export interface ProxyLimits extends RelayLimits {
  maxConnectionsPerIp: number;
  maxTransfers: number;
  /** Milliseconds from a connection's start to its activation. */
  unactivatedMs: number;
}

interface Party {
  socket: net.Socket;
  /** Stops holding its early bytes (holdEarlyBytes). */
  release: () => void;
}

interface Pending {
  parties: Party[];
  active: boolean;
}

/** Bytes kept from one connection before its activation. */
const EARLY_LIMIT = 65_536;

export type Activation = 'activated' | 'not-found' | 'one-side' | 'active' | 'busy';

const HASH = /^[0-9a-f]{40}$/;

export class Socks5Proxy {
  private readonly servers: net.Server[] = [];
  private readonly perIp: PerIpCap;
  private readonly streams = new Map<string, Pending>();
  /** Every open connection, with its activation deadline until activated. */
  private readonly sockets = new Map<net.Socket, NodeJS.Timeout | undefined>();
  private transfers = 0;

  constructor(
    private readonly limits: ProxyLimits,
    private readonly log: Logger,
  ) {
    this.perIp = new PerIpCap(limits.maxConnectionsPerIp);
  }

  /** Listens on every interface (one missing address family skipped); returns the port bound. */
  async listen(interfaces: string[], port: number): Promise<number> {
    let bound = port;
    for (const address of interfaces) {
      const server = net.createServer((socket) => this.accept(socket));
      try {
        await listenOn(server, address, bound);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL') {
          this.log.warn({ address, port: bound }, 'address not available, skipped');
          continue;
        }
        await this.close();
        throw listenError('proxy65 SOCKS5', err);
      }
      this.servers.push(server);
      // With port 0, the other interfaces take the port the first one got.
      bound = (server.address() as net.AddressInfo).port;
      this.log.info({ address, port: bound }, 'SOCKS5 bytestreams proxy listening');
    }
    if (this.servers.length === 0) throw new Error(`proxy65: no interface to listen on (${interfaces.join(', ')})`);
    return bound;
  }

  private accept(socket: net.Socket): void {
    const ip = socket.remoteAddress ?? '?';
    if (!this.perIp.admit(socket)) {
      this.log.warn({ ip }, 'too many proxy connections from this address: refused');
      socket.destroy();
      return;
    }
    const deadline = setTimeout(() => {
      this.log.debug({ ip }, 'proxy connection not activated in time: closed');
      socket.destroy();
    }, this.limits.unactivatedMs);
    deadline.unref();
    this.sockets.set(socket, deadline);
    socket.on('error', (err) => this.log.debug({ ip, err: err.message }, 'proxy connection failed'));
    socket.once('close', () => {
      clearTimeout(this.sockets.get(socket));
      this.sockets.delete(socket);
    });
    this.handshake(socket, ip).catch((err: unknown) => {
      this.log.warn({ ip, err }, 'proxy connection failed');
      socket.destroy();
    });
  }

  private async handshake(socket: net.Socket, ip: string): Promise<void> {
    let request;
    try {
      request = await readRequest(socket);
    } catch (err) {
      if (!(err instanceof HandshakeError)) throw err;
      this.log.debug({ ip, reason: err.message }, 'SOCKS5 handshake refused');
      socket.end();
      return;
    }
    const { hash } = request;
    if (!HASH.test(hash)) {
      this.log.debug({ ip }, 'SOCKS5 address is not a bytestream hash: refused');
      return request.refuse(Reply.notAllowed);
    }
    if (socket.destroyed) return;
    const pending = this.streams.get(hash) ?? { parties: [], active: false };
    if (pending.parties.length >= 2) {
      // One target per bytestream (XEP-0065 §9.1: no multicasting).
      this.log.debug({ ip }, 'a third connection for a bytestream: refused');
      return request.refuse(Reply.notAllowed);
    }
    const party = { socket, release: holdEarlyBytes(socket, EARLY_LIMIT) };
    pending.parties.push(party);
    this.streams.set(hash, pending);
    socket.once('close', () => {
      if (pending.active) return;
      pending.parties.splice(pending.parties.indexOf(party), 1);
      if (pending.parties.length === 0 && this.streams.get(hash) === pending) this.streams.delete(hash);
    });
    request.accept();
  }

  /** Activates the bytestream `hash` (the initiator's IQ): relays between its two connections. */
  activate(hash: string): Activation {
    const pending = this.streams.get(hash);
    if (!pending) return 'not-found';
    if (pending.active) return 'active';
    if (pending.parties.length < 2) return 'one-side';
    if (this.transfers >= this.limits.maxTransfers) return 'busy';
    pending.active = true;
    this.transfers++;
    for (const { socket, release } of pending.parties) {
      clearTimeout(this.sockets.get(socket));
      this.sockets.set(socket, undefined);
      release();
    }
    const [target, initiator] = pending.parties.map((p) => p.socket) as [net.Socket, net.Socket];
    void relay(target, initiator, this.limits).then(({ end, bytes }) => {
      this.transfers--;
      if (this.streams.get(hash) === pending) this.streams.delete(hash);
      this.log.debug({ end, bytes }, 'bytestream relay ended');
    });
    return 'activated';
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    const closed = this.servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.sockets.keys()) s.destroy();
    await Promise.all(closed);
  }
}
