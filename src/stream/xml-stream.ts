// One XML stream over a socket: parsing with limits, writing, the TLS upgrade, restarts and the
// closing handshake. c2s and s2s both sit on it; it knows nothing of either role's rules.
import type net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { Element } from '@xmpp/xml';
import { escapeXML } from '@xmpp/xml';
import type { Logger } from '../log.js';
import { XmlStreamParser, type XmlLimits, type XmlStreamError } from '../xml/parser.js';
import { NS } from '../xml/namespaces.js';
import { StreamError } from './errors.js';
import { corkForTick, logStreamClose, TransportState, type StreamTransport, type XmlStreamEvents } from './transport.js';

export type { XmlStreamEvents };

/** How long to wait for the peer's closing tag before dropping the socket. */
const CLOSE_GRACE_MS = 2000;

export function streamId(): string {
  return randomBytes(9).toString('base64url');
}

export class XmlStream extends TransportState implements StreamTransport {
  readonly kind = 'tcp' as const;
  socket: net.Socket;
  private readonly parser: XmlStreamParser;
  private headerSent = false;

  constructor(
    socket: net.Socket,
    limits: XmlLimits,
    private readonly defaultNs: string,
    private readonly log: Logger,
    events: XmlStreamEvents,
  ) {
    super(events);
    this.socket = socket;
    this.parser = new XmlStreamParser(limits, {
      streamStart: (header) => this.safely(() => this.events.header(header)),
      stanza: (el) => this.safely(() => this.events.element(el)),
      streamEnd: () => this.onPeerClosed(),
      error: (err: XmlStreamError) => this.close(new StreamError(err.condition, err.message)),
    });
    this.attach(socket);
  }

  get encrypted(): boolean {
    return this.socket instanceof tls.TLSSocket;
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  /**
   * Writes our stream header: `<stream:stream ...>` with the given attributes. `version`
   * undefined: none (XEP-0114 component streams predate XMPP 1.0 and have no features).
   */
  open(attrs: Record<string, string>, version: string | undefined = '1.0'): void {
    let header = `<?xml version='1.0'?><stream:stream xmlns='${this.defaultNs}' xmlns:stream='${NS.STREAM}'`;
    if (version !== undefined) header += ` version='${version}'`;
    for (const [k, v] of Object.entries(attrs)) header += ` ${k}='${escapeXML(v)}'`;
    this.write(`${header}>`);
    this.headerSent = true;
  }

  send(element: Element | string): void {
    if (this.ended || this.closingSent) return;
    this.write(typeof element === 'string' ? element : element.toString());
  }

  /** Forget the parsed state and expect a new header (after TLS and after SASL). */
  restart(): void {
    this.headerSent = false;
    this.parser.reset();
  }

  /** Server-side STARTTLS: call after writing `<proceed/>`. Resolves once the handshake is done. */
  upgradeToTls(options: tls.TlsOptions): Promise<tls.TLSSocket> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    raw.removeAllListeners('timeout');
    this.restart();
    const secure = new tls.TLSSocket(raw, { ...options, isServer: true });
    this.socket = secure;
    this.attach(secure);
    return new Promise((resolve, reject) => {
      secure.once('secure', () => resolve(secure));
      secure.once('error', reject);
    });
  }

  /**
   * Server-side STARTTLS where `wrap` runs the handshake on the raw socket and resolves with
   * the TLS socket (s2s: through a tls.Server, which verifies a requested client certificate
   * and reports it as `authorized`; a bare TLSSocket does not). Call after writing
   * `<proceed/>`; `wrap` must take the socket synchronously (no byte may be missed).
   */
  async upgradeWith(wrap: (raw: net.Socket) => Promise<tls.TLSSocket>): Promise<tls.TLSSocket> {
    const secure = await wrap(this.detachForTls());
    this.socket = secure;
    this.attach(secure);
    return secure;
  }

  /** Client-side STARTTLS (s2s outgoing): call after receiving `<proceed/>`. */
  upgradeToTlsClient(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    const raw = this.detachForTls();
    const secure = tls.connect({ ...options, socket: raw });
    this.socket = secure;
    this.attach(secure);
    return new Promise((resolve, reject) => {
      secure.once('secureConnect', () => resolve(secure));
      secure.once('error', reject);
    });
  }

  /** Takes the raw socket's listeners off (same tick as the TLS wrap, so no byte is lost). */
  private detachForTls(): net.Socket {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    raw.removeAllListeners('timeout');
    // Errors of the connection surface on the TLS socket; one on the raw socket must not be
    // an unhandled 'error' event.
    raw.on('error', () => {});
    this.restart();
    return raw;
  }

  /** Closes the stream: header if none was sent, the error if any, the closing tag, then the socket. */
  close(error?: StreamError): void {
    if (this.ended || this.closingSent) return;
    logStreamClose(this.log, error);
    if (!this.headerSent) this.open({ id: streamId() });
    if (error) this.write(error.toElement().toString());
    this.write('</stream:stream>');
    this.closingSent = true;
    this.events.closing?.();
    this.pendingError = error;
    this.socket.end();
    // Cleared when the socket closes: left running, it held the stream (and its session, parser
    // and logger) for the whole grace period after the connection was gone.
    this.graceTimer = setTimeout(() => this.destroy(), CLOSE_GRACE_MS);
    this.graceTimer.unref();
  }

  /** Drops the connection at once, without the closing handshake. */
  destroy(): void {
    if (this.ended) return;
    this.socket.destroy();
    this.finish();
  }

  private onPeerClosed(): void {
    if (!this.closingSent) {
      this.write('</stream:stream>');
      this.closingSent = true;
      this.events.closing?.();
    }
    this.socket.end();
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.lastReceived = Date.now();
      this.parser.write(chunk);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.log.debug({ err: err.message, code: err.code }, 'socket error');
      this.destroy();
    });
    socket.on('close', () => this.finish());
  }

  /** Batches the writes of one tick into one socket write. */
  private write(data: string): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    corkForTick(socket);
    socket.write(data);
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof StreamError) return this.close(err);
      this.log.error({ err }, 'stream handler failed');
      this.close(new StreamError('internal-server-error'));
    }
  }
}
