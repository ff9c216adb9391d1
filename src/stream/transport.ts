// The seam between a client session and what carries its stream: a TCP/TLS socket (XmlStream),
// a WebSocket (RFC 7395) or BOSH (XEP-0206). The session speaks the same stream whatever
// carries it; the transport frames, parses, writes and closes.
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { Element } from '@xmpp/xml';
import type { Logger } from '../log.js';
import type { StreamError } from './errors.js';

export interface XmlStreamEvents {
  /** The peer's stream header (first, and after each restart). */
  header(header: Element): void;
  /** A complete top-level element. */
  element(element: Element): void;
  /** The closing handshake began (either side): nothing more can be sent. Called at most once. */
  closing?(): void;
  /** The connection is gone (after a close, an error or the peer hanging up). Called once. */
  closed(error?: StreamError): void;
}

export interface StreamTransport {
  /** What carries the stream, for metrics and the session listing. */
  readonly kind: 'tcp' | 'websocket' | 'bosh';
  /** When data last arrived, for idle detection. */
  readonly lastReceived: number;
  /** The connection is gone. */
  readonly closed: boolean;
  /** The stream ended with the closing handshake begun by either side (not a dropped connection). */
  readonly closedCleanly: boolean;
  /** Closing or closed: nothing written now reaches the peer. */
  readonly closing: boolean;
  /** Confidential to the peer: TLS here, or HTTPS/a trusted proxy for the web transports. */
  readonly encrypted: boolean;
  /** The TLS connection the stream runs on directly, for channel binding; undefined otherwise. */
  readonly tlsSocket: tls.TLSSocket | undefined;
  /** Hands the stream's events to another owner (a resumed session takes over this connection). */
  setEvents(events: XmlStreamEvents): void;
  /** Writes our stream header with the given attributes (id, from, xml:lang). */
  open(attrs: Record<string, string>): void;
  /** Writes one top-level element (or its serialisation). */
  send(element: Element | string): void;
  /** Forgets the parsed state and expects a new header (after SASL). */
  restart(): void;
  /** Closes the stream: header if none was sent, the error if any, the closing handshake. */
  close(error?: StreamError): void;
  /** Drops the connection at once, without the closing handshake. */
  destroy(): void;
  /** Server-side STARTTLS, where the transport has it (TCP); resolves once TLS is on. */
  upgradeToTls?(options: tls.TlsOptions): Promise<unknown>;
}

/** The closing state every transport keeps, and its lastReceived. */
export abstract class TransportState {
  protected pendingError: StreamError | undefined;
  /** Drops the connection when the peer does not finish the closing handshake in time. */
  protected graceTimer: NodeJS.Timeout | undefined;
  /** The closing handshake began (our closing element or the peer's). */
  protected closingSent = false;
  /** The connection is gone. */
  protected ended = false;
  /** When data last arrived, for idle detection. */
  lastReceived = Date.now();

  get closed(): boolean {
    return this.ended;
  }

  /**
   * Whether the stream ended with the closing handshake begun by either side, rather than the
   * connection simply dropping (what stream management's resumption is for).
   */
  get closedCleanly(): boolean {
    return this.closingSent;
  }

  /** Closing or closed: nothing written now reaches the peer. */
  get closing(): boolean {
    return this.closingSent || this.ended;
  }

  constructor(protected events: XmlStreamEvents) {}

  /** Hands the stream's events to another owner (a resumed session takes over this connection). */
  setEvents(events: XmlStreamEvents): void {
    this.events = events;
  }

  /** The connection is gone: 'closed' once, with the error the stream was closed with. */
  protected finish(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    this.events.closed(this.pendingError);
  }
}

/** Corks `socket` until the next tick (once a tick): the writes of a tick go out in one write. */
export function corkForTick(socket: Duplex): void {
  if (socket.writableCorked > 0) return;
  socket.cork();
  process.nextTick(() => socket.uncork());
}

/** Makes the transport of a new client session, given the session's logger and events. */
export type TransportFactory = (log: Logger, events: XmlStreamEvents) => StreamTransport;

/** The log line of a stream closed with an error (at info for the expected conditions). */
export function logStreamClose(log: Logger, error: StreamError | undefined): void {
  if (!error) return;
  const level = error.condition === 'system-shutdown' || error.condition === 'conflict' ? 'info' : 'warn';
  log[level]({ condition: error.condition, text: error.text }, 'closing stream with an error');
}
