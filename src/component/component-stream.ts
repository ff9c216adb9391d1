// One external component's connection (XEP-0114, jabber:component:accept): the stream header
// names the component's domain, the <handshake/> proves the shared secret, then stanzas flow
// both ways. A stanza from the component must come from its own domain (a JID at it, or the
// domain itself); anything else ends the stream with <invalid-from/>, as in Prosody.
import type net from 'node:net';
import { xml, type Element } from '@xmpp/xml';
import type { Config, ComponentOptions } from '../config/schema.js';
import { JidError, parseJid, type Jid } from '../jid.js';
import type { Logger } from '../log.js';
import { tryPrepareDomain } from '../precis.js';
import { StanzaError, StreamError, errorReply } from '../stream/errors.js';
import { XmlStream, streamId } from '../stream/xml-stream.js';
import { NS } from '../xml/namespaces.js';
import { handshakeMatches } from './handshake.js';

export type ComponentListenerOptions = Config['component_listener'];

/** What a component stream needs from the listener that accepted it. */
export interface ComponentStreamDeps {
  readonly options: ComponentListenerOptions;
  readonly log: Logger;
  /** The configured component of a (prepared) domain. */
  lookup(domain: string): ComponentOptions | undefined;
  /** Takes the domain for this stream after a good handshake; false: refused (a conflict). */
  attach(stream: ComponentStream): boolean;
  /** The stream is gone (called once, authenticated or not). */
  closed(stream: ComponentStream): void;
  /** Hands a checked stanza from the component to the router. */
  route(stanza: Element): Promise<void>;
}

const STANZAS = new Set(['message', 'presence', 'iq']);
/** Namespaces a component's stanza may carry: its stream's, or the client and server ones, tolerated. */
const STANZA_NAMESPACES = new Set<string | undefined>([undefined, NS.COMPONENT_ACCEPT, NS.CLIENT, NS.SERVER]);

export class ComponentStream {
  readonly id = streamId();
  /** The component's domain, from the stream header. */
  domain: string | undefined;
  authenticated = false;
  readonly remoteAddress: string;
  private readonly stream: XmlStream;
  private timer: NodeJS.Timeout | undefined;
  /** Stanzas are routed one after another, in the order they came. */
  private chain: Promise<void> = Promise.resolve();
  private log: Logger;

  constructor(
    socket: net.Socket,
    private readonly deps: ComponentStreamDeps,
  ) {
    this.remoteAddress = socket.remoteAddress ?? '?';
    this.log = deps.log.child({ sid: this.id, ip: this.remoteAddress });
    const { max_stanza_size, max_depth, max_attributes } = deps.options;
    this.stream = new XmlStream(socket, { maxStanzaBytes: max_stanza_size, maxDepth: max_depth, maxAttributes: max_attributes }, NS.COMPONENT_ACCEPT, this.log, {
      header: (h) => this.onHeader(h),
      element: (el) => this.onElement(el),
      closed: (err) => this.onClosed(err),
    });
    socket.setNoDelay(true);
    const ms = deps.options.auth_timeout * 1000;
    if (ms > 0) {
      this.timer = setTimeout(() => this.close(new StreamError('connection-timeout', 'no handshake in time')), ms);
      this.timer.unref();
    }
  }

  get closed(): boolean {
    return this.stream.closing;
  }

  close(error?: StreamError): void {
    this.stream.close(error);
  }

  /** Sends a stanza routed to the component's domain. */
  deliver(stanza: Element): void {
    if (stanza.attrs.xmlns === NS.CLIENT || stanza.attrs.xmlns === NS.SERVER) delete stanza.attrs.xmlns;
    this.stream.send(stanza);
  }

  private onHeader(header: Element): void {
    if (this.domain !== undefined) throw new StreamError('policy-violation', 'a component stream is opened once');
    const to = header.attrs.to === undefined ? undefined : tryPrepareDomain(header.attrs.to);
    this.stream.open(to ? { from: to, id: this.id } : { id: this.id }, undefined);
    if (header.name !== 'stream:stream' || header.attrs['xmlns:stream'] !== NS.STREAM) {
      throw new StreamError('invalid-namespace', 'the stream element must be stream:stream in the streams namespace');
    }
    if (header.attrs.xmlns !== NS.COMPONENT_ACCEPT) throw new StreamError('invalid-namespace', `the default namespace must be ${NS.COMPONENT_ACCEPT}`);
    if (!to || !this.deps.lookup(to)) {
      this.log.warn({ to: header.attrs.to }, 'a component connected for a domain that is not configured');
      throw new StreamError('host-unknown', `no component is configured for ${header.attrs.to ?? '(no domain)'}`);
    }
    this.domain = to;
    this.log = this.log.child({ domain: to });
  }

  private onElement(el: Element): void {
    if (this.domain === undefined) throw new StreamError('not-well-formed', 'an element before the stream header');
    if (!this.authenticated) {
      if (el.name !== 'handshake' || !STANZA_NAMESPACES.has(el.attrs.xmlns)) throw new StreamError('not-authorized', 'send the <handshake/> first');
      return this.onHandshake(el);
    }
    if (!STANZAS.has(el.name) || !STANZA_NAMESPACES.has(el.attrs.xmlns)) {
      throw new StreamError('unsupported-stanza-type', `<${el.name}/> is not expected on a component stream`);
    }
    this.onStanza(el);
  }

  private onHandshake(el: Element): void {
    const domain = this.domain!;
    const secret = this.deps.lookup(domain)!.secret;
    if (!handshakeMatches(el.getText(), this.id, secret)) {
      this.log.warn('component handshake failed: wrong secret');
      throw new StreamError('not-authorized', 'the handshake does not match the secret');
    }
    if (!this.deps.attach(this)) throw new StreamError('conflict', `a component for ${domain} is connected already`);
    clearTimeout(this.timer);
    this.authenticated = true;
    this.stream.send(xml('handshake'));
    this.log.info('component connected');
  }

  private onStanza(stanza: Element): void {
    const domain = this.domain!;
    let from: Jid;
    try {
      from = parseJid(stanza.attrs.from ?? domain);
    } catch (err) {
      if (!(err instanceof JidError)) throw err;
      throw new StreamError('invalid-from', `'from' ${stanza.attrs.from} is not a valid address`);
    }
    if (from.domain !== domain) throw new StreamError('invalid-from', `a component may send only from ${domain}, not from ${from}`);
    stanza.attrs.from = from.toString();
    delete stanza.attrs.xmlns;
    if (stanza.attrs.to === undefined) {
      // XEP-0114 §3: stanzas of a component carry both addresses.
      const error = new StanzaError('bad-request', "a 'to' attribute is required on stanzas");
      const type = stanza.attrs.type;
      if (type !== 'error' && type !== 'result') this.deliver(errorReply(stanza, error));
      return;
    }
    this.chain = this.chain.then(() => this.deps.route(stanza)).catch((err) => this.log.error({ err }, 'routing a stanza from a component failed'));
  }

  private onClosed(error?: StreamError): void {
    clearTimeout(this.timer);
    this.log.info({ condition: error?.condition }, this.authenticated ? 'component disconnected' : 'component connection closed');
    this.deps.closed(this);
  }
}
