// The s2s listeners: 5269 with STARTTLS, and direct TLS ports (XEP-0368) when configured.
// Direct TLS asks for the client certificate in the handshake, like STARTTLS does.
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../log.js';
import type { S2sOptions } from './context.js';
import type { S2sTls } from './tls.js';
import { listenOn } from '../net/listen.js';

export interface S2sBoundAddress {
  address: string;
  port: number;
  directTls: boolean;
}

export class S2sListeners {
  private readonly servers: net.Server[] = [];

  constructor(
    private readonly options: S2sOptions,
    private readonly tlsConfig: S2sTls,
    private readonly log: Logger,
    private readonly accept: (socket: net.Socket, directTls: boolean) => void,
  ) {}

  async listen(): Promise<S2sBoundAddress[]> {
    const bound: S2sBoundAddress[] = [];
    for (const listener of this.options.listeners) {
      for (const address of listener.interfaces) {
        const server = listener.direct_tls
          ? tls.createServer({ ...this.tlsConfig.serverOptions(), handshakeTimeout: this.options.connect_timeout * 1000 || 120_000 }, (s) => this.accept(s, true))
          : net.createServer((s) => this.accept(s, false));
        if (listener.direct_tls) {
          server.on('tlsClientError', (err, socket) => this.log.debug({ err: err.message, ip: socket.remoteAddress }, 'direct TLS handshake failed'));
        }
        try {
          await listenOn(server, address, listener.port);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL') {
            this.log.warn({ address, port: listener.port }, 'address not available, skipped');
            continue;
          }
          // Like Prosody: a port taken by another server costs incoming federation on it, not
          // the whole server (outgoing streams still work). Said loudly.
          if (code === 'EADDRINUSE') {
            this.log.error({ address, port: listener.port }, 's2s port in use by another process: no incoming server connections on it');
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

  stop(): Promise<void> {
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.length = 0;
    return closed.then(() => undefined);
  }
}
