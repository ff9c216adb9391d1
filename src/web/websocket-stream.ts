// A client stream over a WebSocket (RFC 7395): one element per text message, <open/> and
// <close/> in place of the stream header and closing tag. Each message goes through the
// server's parser (restricted XML and limits as on TCP) inside a stream root of our own, and
// must hold exactly one complete element.
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { Element } from '@xmpp/xml';
import { Element as XmlElement, escapeXML } from '@xmpp/xml';
import type { WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { StreamError } from '../stream/errors.js';
import { corkForTick, logStreamClose, TransportState, type StreamTransport, type XmlStreamEvents } from '../stream/transport.js';
import { streamId } from '../stream/xml-stream.js';
import { NS } from '../xml/namespaces.js';
import { XmlStreamParser, type XmlLimits } from '../xml/parser.js';
import { standalone } from './framing.js';

/** The root every message is parsed inside (the parser strips the stanzas' 'jabber:client'). */
const ROOT = `<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'>`;
const CLOSE = `<close xmlns='${NS.FRAMING}'/>`;
/** How long to wait for the peer's <close/> before dropping the connection. */
const CLOSE_GRACE_MS = 2000;

export interface WebSocketPeer {
  /** Over HTTPS, or from a trusted proxy that terminated TLS. */
  secure: boolean;
  /** The TLS connection the WebSocket runs on (HTTPS listener), for channel binding. */
  tlsSocket: tls.TLSSocket | undefined;
  /** The connection under the WebSocket, corked for a tick so that a tick's messages go in one write. */
  socket: Duplex;
}

export class WebSocketStream extends TransportState implements StreamTransport {
  readonly kind = 'websocket' as const;
  private readonly parser: XmlStreamParser;
  /** The next message starts a new parse (first message, or after a restart). */
  private rootNeeded = true;
  /** After a (re)start, the client's <open/> must come first. */
  private awaitingOpen = true;
  /** The elements of the message being parsed (one, or it is refused). */
  private readonly elements: Element[] = [];
  private headerSent = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly peer: WebSocketPeer,
    limits: XmlLimits,
    private readonly log: Logger,
    events: XmlStreamEvents,
  ) {
    super(events);
    this.parser = new XmlStreamParser(limits, {
      streamStart: () => {},
      stanza: (el) => void this.elements.push(el),
      streamEnd: () => this.fail(new StreamError('not-well-formed', 'a WebSocket stream ends with <close/>, not a closing tag')),
      error: (err) => this.fail(new StreamError(err.condition, err.message)),
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('error', (err: Error) => {
      this.log.debug({ err: err.message }, 'WebSocket error');
      this.destroy();
    });
    ws.on('close', () => this.finish());
  }

  get encrypted(): boolean {
    return this.peer.secure;
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.peer.tlsSocket;
  }

  open(attrs: Record<string, string>): void {
    let open = `<open xmlns='${NS.FRAMING}' version='1.0'`;
    for (const [k, v] of Object.entries(attrs)) open += ` ${k}='${escapeXML(v)}'`;
    this.write(`${open}/>`);
    this.headerSent = true;
  }

  send(element: Element | string): void {
    if (this.closing) return;
    this.write(standalone(typeof element === 'string' ? element : element.toString()));
  }

  restart(): void {
    this.headerSent = false;
    this.awaitingOpen = true;
    this.rootNeeded = true;
    this.parser.reset();
  }

  close(error?: StreamError): void {
    if (this.closing) return;
    logStreamClose(this.log, error);
    if (!this.headerSent) this.open({ id: streamId() });
    if (error) this.write(standalone(error.toElement().toString()));
    this.write(CLOSE);
    this.closingSent = true;
    this.pendingError = error;
    this.events.closing?.();
    // The client answers with its <close/> (then the WebSocket closes), or is dropped.
    this.graceTimer = setTimeout(() => this.destroy(), CLOSE_GRACE_MS);
    this.graceTimer.unref();
  }

  destroy(): void {
    if (this.ended) return;
    this.ws.terminate();
    this.finish();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.lastReceived = Date.now();
    if (this.ended) return;
    if (isBinary) return this.fail(new StreamError('not-well-formed', 'XMPP over WebSocket uses text messages'));
    if (this.rootNeeded) {
      this.rootNeeded = false;
      this.parser.write(ROOT);
    }
    this.elements.length = 0;
    this.parser.write(data);
    if (this.closing && !this.elements.some((el) => this.isFraming(el, 'close'))) return;
    // Checked before anything in the message is acted on.
    if (this.elements.length > 1 || !this.parser.betweenElements) {
      return this.fail(new StreamError('not-well-formed', 'a WebSocket message must hold one complete element'));
    }
    const el = this.elements.pop();
    if (!el) return; // whitespace
    try {
      this.dispatch(el);
    } catch (err) {
      if (err instanceof StreamError) return this.fail(err);
      this.log.error({ err }, 'stream handler failed');
      this.fail(new StreamError('internal-server-error'));
    }
  }

  private dispatch(el: Element): void {
    if (this.isFraming(el, 'close')) return this.onPeerClosed();
    if (this.closing) return;
    if (this.isFraming(el, 'open')) {
      if (!this.awaitingOpen) throw new StreamError('not-well-formed', '<open/> in the middle of a stream');
      this.awaitingOpen = false;
      const { xmlns: _framing, ...attrs } = el.attrs;
      const header = new XmlElement('stream:stream', { ...attrs, xmlns: NS.CLIENT, 'xmlns:stream': NS.STREAM });
      return this.events.header(header);
    }
    if (this.awaitingOpen) throw new StreamError('not-well-formed', 'an element before <open/>');
    this.events.element(el);
  }

  private isFraming(el: Element, name: string): boolean {
    return el.name === name && el.attrs.xmlns === NS.FRAMING;
  }

  /** The client's <close/>: answered with ours when it began, then the WebSocket closes. */
  private onPeerClosed(): void {
    if (!this.closingSent) {
      this.write(CLOSE);
      this.closingSent = true;
      this.events.closing?.();
    }
    this.ws.close(1000);
    this.graceTimer ??= setTimeout(() => this.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** An error in what the client sent: the stream error, then the closing handshake. */
  private fail(error: StreamError): void {
    if (this.closing) return;
    this.close(error);
  }

  private write(data: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    corkForTick(this.peer.socket);
    this.ws.send(data);
  }
}
