// A client connection (RFC 6120): stream header checks, STARTTLS, handing negotiation to the
// modules (SASL), resource binding, then stamping and routing the client's stanzas.
import type tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import { JidError, type Jid } from '../jid.js';
import type { Logger } from '../log.js';
import type { ServerCore } from '../module-api/core.js';
import type { Host, PreAuthIq, PreAuthIqHandler } from '../module-api/host.js';
import { SessionData } from '../module-api/keys.js';
import { isStanza, type ClientStream } from '../sessions/session.js';
import { StanzaError, StreamError, errorReply } from '../stream/errors.js';
import { streamId } from '../stream/xml-stream.js';
import type { StreamTransport, TransportFactory } from '../stream/transport.js';
import type { XmlLimits } from '../xml/parser.js';
import { NS } from '../xml/namespaces.js';

type Phase = 'connected' | 'authenticated' | 'bound';

export interface ClientSessionOptions {
  core: ServerCore;
  /** What carries the stream (TCP/TLS, WebSocket, BOSH). */
  transport: TransportFactory;
  /** The client's address (behind a trusted proxy: the one it forwarded). */
  remoteAddress: string;
  /** Whether the socket is TLS from the start (XEP-0368 direct TLS). */
  directTls: boolean;
  /** Called once when the session is gone, for the listener's bookkeeping. */
  onClosed(session: ClientSession): void;
  /** Called once when the stream authenticates (ends the unauthenticated-connection count). */
  onAuthenticated(session: ClientSession): void;
  /** Called when a kept session resumes on a connection of this listener. */
  onResumed(session: ClientSession): void;
}

const STANZAS = new Set(['message', 'presence', 'iq']);

export class ClientSession implements ClientStream {
  readonly id = streamId();
  readonly data = new SessionData();
  readonly connectedAt = Date.now();
  remoteAddress: string;
  log: Logger;
  presence: Element | undefined;
  priority = 0;
  user: Jid | undefined;
  jid: Jid | undefined;
  private hostEntry: Host | undefined;
  private phase: Phase = 'connected';
  private stream: StreamTransport;

  /** What carries the stream now (it may change on a resumption). */
  get transportKind(): StreamTransport['kind'] {
    return this.stream.kind;
  }
  private readonly core: ServerCore;
  private timer: NodeJS.Timeout | undefined;
  /** Ended for good (not merely disconnected and kept for resumption). */
  private ended = false;
  /** Settles when the session's teardown (presence, session/closed hooks) is done. */
  finished: Promise<void> = Promise.resolve();
  /** Disconnected, but kept by stream management for a resumption. */
  hibernating = false;
  // Inbound stanzas are handled asynchronously; XEP-0198 counts them in order, so completion
  // is tracked as the highest sequence number below which everything is done.
  /** The last stanza received has its order fixed (Router.routeInOrder: `sequenced`). */
  private inbound: Promise<void> = Promise.resolve();
  /** The last stanza received is routed (`dispatched`). */
  private dispatched: Promise<void> = Promise.resolve();
  private received = 0;
  private handledUpTo = 0;
  private readonly completedAhead = new Set<number>();
  private handledWaiters: { seq: number; resolve: (n: number) => void }[] = [];

  constructor(private readonly options: ClientSessionOptions) {
    this.core = options.core;
    this.remoteAddress = options.remoteAddress;
    this.log = this.core.log.child({ sid: this.id, ip: this.remoteAddress });
    this.stream = options.transport(this.log, this.streamEvents());
    this.armTimer(this.core.config.c2s.auth_timeout * 1000);
  }

  get host(): string {
    return this.hostEntry?.domain ?? '';
  }

  get secure(): boolean {
    return this.stream.encrypted;
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.stream.tlsSocket;
  }

  get closed(): boolean {
    return this.ended || (this.stream.closing && !this.hibernating);
  }

  private streamEvents() {
    return {
      header: (h: Element) => this.onHeader(h),
      element: (el: Element) => this.onElement(el),
      // From the first closing tag on, nothing reaches this client: route around it at once.
      closing: () => this.core.sessions.remove(this),
      closed: (err?: StreamError) => this.onClosed(err),
    };
  }

  get lastReceivedAt(): number {
    return this.stream.lastReceived;
  }

  sendNonza(element: Element): void {
    if (isStanza(element)) throw new Error(`<${element.name}/> is a stanza: it goes through deliver(), not sendNonza()`);
    this.stream.send(element);
  }

  deliver(stanza: Element, from?: Jid): void {
    if (this.throughPipeline(stanza, from)) return;
    this.stream.send(stanza);
  }

  deliverSerialized(stanza: Element, serialized: string, from?: Jid): void {
    // The same pipeline as deliver() (stream management queues the element); only the
    // serialisation is skipped: the caller made it once for many sessions.
    if (this.throughPipeline(stanza, from)) return;
    this.stream.send(serialized);
  }

  retransmit(stanza: Element): void {
    this.stream.send(stanza);
  }

  /** The outbound pipeline; true when a hook took the stanza. Synchronous, so stanzas reach the wire (and stream management's count) in routing order. */
  private throughPipeline(stanza: Element, from: Jid | undefined): boolean {
    const host = this.hostEntry;
    return host !== undefined && host.hooks.has('stanza/out') && host.hooks.fireSync('stanza/out', { session: this, stanza, from });
  }

  /** A reply the stream itself makes (binding, legacy session, registration before login): once bound, through the pipeline. */
  private reply(stanza: Element): void {
    if (this.jid) this.deliver(stanza);
    else this.stream.send(stanza);
  }

  close(error?: StreamError): void {
    if (this.hibernating) return this.end(error);
    this.stream.close(error);
  }

  // --- negotiation -------------------------------------------------------------------------

  private onHeader(header: Element): void {
    if (header.name !== 'stream:stream' || header.attrs['xmlns:stream'] !== NS.STREAM) {
      throw new StreamError('invalid-namespace', 'the stream element must be stream:stream in the streams namespace');
    }
    if (header.attrs.xmlns !== NS.CLIENT) throw new StreamError('invalid-namespace', `the default namespace must be ${NS.CLIENT}`);
    const to = (header.attrs.to ?? '').toLowerCase().replace(/\.$/, '');
    const host = to ? this.core.hosts.get(to) : this.core.hosts.size === 1 ? this.core.hosts.values().next().value : undefined;
    if (!host) {
      throw new StreamError('host-unknown', to ? `this server does not serve ${to}` : 'the stream header has no "to"');
    }
    if (this.hostEntry && this.hostEntry !== host) {
      throw new StreamError('host-unknown', 'a stream restart may not switch host');
    }
    this.hostEntry = host;
    this.stream.open({ id: streamId(), from: host.domain, 'xml:lang': 'en' });
    const version = header.attrs.version;
    if (!version || Number(version.split('.')[0]) !== 1) {
      throw new StreamError('unsupported-version', 'Starling speaks XMPP 1.0 streams');
    }
    this.sendFeatures();
  }

  sendFeatures(): void {
    const host = this.hostEntry!;
    const c2s = this.core.config.c2s;
    const features = xml('stream:features');
    if (this.phase === 'connected') {
      if (!this.secure && this.stream.upgradeToTls) features.append(xml('starttls', { xmlns: NS.TLS }, c2s.require_encryption ? xml('required') : null));
      if (this.secure || !c2s.require_encryption) this.appendFeatures(features, host, 'pre-auth');
    } else {
      if (this.phase === 'authenticated') {
        features.append(xml('bind', { xmlns: NS.BIND }));
        features.append(xml('session', { xmlns: NS.SESSION }, xml('optional')));
      }
      this.appendFeatures(features, host, 'post-auth');
    }
    features.append(
      xml(
        'limits',
        { xmlns: NS.STREAM_LIMITS },
        xml('max-bytes', {}, String(c2s.max_stanza_size)),
        this.phase === 'connected' ? null : xml('idle-seconds', {}, String(c2s.idle_ping_interval + c2s.idle_ping_timeout)),
      ),
    );
    this.stream.send(features);
  }

  private appendFeatures(features: Element, host: Host, stage: 'pre-auth' | 'post-auth'): void {
    for (const feature of host.streamFeatures) {
      if (feature.stage !== stage) continue;
      const el = feature.advertise(this);
      if (el) features.append(el);
    }
  }

  private onElement(el: Element): void {
    const host = this.hostEntry;
    if (!host) throw new StreamError('not-well-formed', 'an element before the stream header');
    if (el.name === 'starttls' && el.attrs.xmlns === NS.TLS) return void this.startTls();
    const nonza = host.nonza(el);
    if (nonza) {
      void Promise.resolve()
        .then(() => nonza(this, el))
        .catch((err) => {
          if (err instanceof StreamError) return this.close(err);
          this.log.error({ err, element: el.name }, 'negotiation handler failed');
          this.close(new StreamError('internal-server-error'));
        });
      return;
    }
    if (!STANZAS.has(el.name)) throw new StreamError('unsupported-stanza-type', `<${el.name}/> is not a stanza`);
    if (this.phase === 'connected') {
      // The one kind of stanza served before authentication: an IQ a module registered for that
      // stage (in-band registration), once the stream may negotiate at all.
      const preAuth = el.name === 'iq' && (this.secure || !this.core.config.c2s.require_encryption) ? this.preAuthHandler(host, el) : undefined;
      if (preAuth) return void this.preAuthIq(preAuth.handler, el, preAuth.payload);
      throw new StreamError(
        this.secure || !this.core.config.c2s.require_encryption ? 'not-authorized' : 'policy-violation',
        this.secure ? 'authenticate first' : 'TLS is required: negotiate STARTTLS first',
      );
    }
    if (el.name === 'iq' && el.attrs.type === 'set' && el.getChild('session', NS.SESSION)) {
      // RFC 3921 session establishment: optional today (RFC 6121), answered for old clients.
      return this.reply(xml('iq', { type: 'result', id: el.attrs.id }));
    }
    if (this.phase === 'authenticated') return void this.beforeBind(el);
    this.onStanza(el);
  }

  /** A module's handler for an IQ get/set before authentication, addressed to the host or to nobody. */
  private preAuthHandler(host: Host, el: Element): { handler: PreAuthIqHandler; payload: Element } | undefined {
    const type = el.attrs.type;
    if (type !== 'get' && type !== 'set') return undefined;
    if (el.attrs.to !== undefined && el.attrs.to.toLowerCase() !== host.domain) return undefined;
    const children = el.children.filter((c): c is Element => typeof c !== 'string');
    if (children.length !== 1) return undefined;
    const handler = host.preAuthIq(type, children[0]!);
    return handler && { handler, payload: children[0]! };
  }

  private async preAuthIq(handler: PreAuthIqHandler, stanza: Element, payload: Element): Promise<void> {
    // The client has no address before authentication: a 'from' it wrote means nothing.
    delete stanza.attrs.from;
    const from = stanza.attrs.to === undefined ? {} : { from: stanza.attrs.to };
    const request: PreAuthIq = {
      stanza,
      payload,
      type: stanza.attrs.type as 'get' | 'set',
      stream: this,
      reply: (...children) => xml('iq', { type: 'result', id: stanza.attrs.id, ...from }, ...children),
    };
    try {
      const reply = await handler(request);
      if (reply) this.reply(reply);
    } catch (err) {
      if (err instanceof StreamError) return this.close(err);
      if (!(err instanceof StanzaError)) this.log.error({ err, ns: payload.attrs.xmlns }, 'IQ handler before authentication failed');
      this.reply(errorReply(stanza, err instanceof StanzaError ? err : new StanzaError('internal-server-error')));
    }
  }

  private async startTls(): Promise<void> {
    // No STARTTLS where the transport has none (WebSocket, BOSH: TLS is the HTTP server's).
    if (this.secure || !this.stream.upgradeToTls) {
      this.stream.send(xml('failure', { xmlns: NS.TLS }));
      return this.close();
    }
    this.stream.send(xml('proceed', { xmlns: NS.TLS }));
    try {
      await this.stream.upgradeToTls(this.core.certificates.socketOptions());
      this.log.debug({ protocol: this.tlsSocket?.getProtocol() }, 'TLS established');
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 'TLS handshake failed');
      this.stream.destroy();
    }
  }

  authenticated(user: Jid, via: string, options: { restart: boolean }): void {
    if (options.restart) this.stream.restart();
    this.user = user;
    this.phase = 'authenticated';
    // One logger per session, its bindings extended in place: a chain of pino children makes
    // each parent a prototype (a map and prototype info of its own, per session).
    this.log.setBindings({ jid: user.toString() });
    this.log.info({ mechanism: via }, 'authenticated');
    this.options.onAuthenticated(this);
    this.armTimer(this.core.config.c2s.idle_ping_interval * 1000);
    void this.hostEntry!.hooks.fire('session/authenticated', { session: this });
  }

  /** Only resource binding (and the legacy session request) may come between SASL and bind. */
  private async beforeBind(el: Element): Promise<void> {
    const bind = el.name === 'iq' && el.attrs.type === 'set' ? el.getChild('bind', NS.BIND) : undefined;
    if (!bind) return this.close(new StreamError('not-authorized', 'bind a resource first'));
    try {
      const jid = await this.bind(bind.getChildText('resource') ?? undefined);
      this.reply(xml('iq', { type: 'result', id: el.attrs.id }, xml('bind', { xmlns: NS.BIND }, xml('jid', {}, jid.toString()))));
    } catch (err) {
      if (!(err instanceof StanzaError)) throw err;
      this.reply(errorReply(el, err));
    }
  }

  async bind(requested?: string): Promise<Jid> {
    if (!this.user || this.jid) throw new StanzaError('not-allowed', 'binding is possible once, after authentication');
    const sessions = this.core.sessions;
    const limit = this.hostEntry!.options.accounts.max_sessions_per_user;
    let jid: Jid;
    try {
      jid = requested?.trim() ? this.user.withResource(requested) : this.user.withResource(randomResource());
    } catch (err) {
      if (err instanceof JidError) throw new StanzaError('bad-request', `the resource is not acceptable: ${err.message}`);
      throw err;
    }
    const existing = sessions.get(jid);
    if (!existing && sessions.count(this.user) >= limit) {
      throw new StanzaError('resource-constraint', `at most ${limit} sessions per account`, 'wait');
    }
    this.jid = jid;
    this.phase = 'bound';
    this.log.setBindings({ resource: jid.resource });
    const replaced = sessions.add(this as ClientSession & { jid: Jid });
    if (replaced && replaced !== this) replaced.close(new StreamError('conflict', 'replaced by a new session with the same resource'));
    this.log.info('resource bound');
    await this.hostEntry!.hooks.fire('session/bound', { session: this });
    return jid;
  }

  // --- stanzas --------------------------------------------------------------------------------

  private onStanza(stanza: Element): void {
    const jid = this.jid!;
    // RFC 6120 §8.1.2.1: the server stamps 'from' with the full JID, whatever the client wrote.
    stanza.attrs.from = jid.toString();
    const seq = ++this.received;
    // In order per session: hooks may wait on storage, and a client's stanzas must still reach
    // their recipients in the order it sent them (RFC 6120 §10.1). A stanza starts once the one
    // before has its order fixed (in the recipient's archive queue, say), not once that one is
    // handled: so the messages of one socket read share a group commit.
    this.inbound = this.inbound.then(() => {
      const { sequenced, dispatched, done } = this.core.router.routeInOrder(stanza, this, this.dispatched);
      this.dispatched = dispatched;
      void done.catch((err) => this.log.error({ err, stanza: stanza.name }, 'handling a stanza failed')).finally(() => this.markHandled(seq));
      return sequenced;
    });
  }

  /** Stanzas received from the client and fully handled (delivered or stored), in order. */
  get handledCount(): number {
    return this.handledUpTo;
  }

  /** Resolves with handledCount once every stanza received so far is handled. */
  whenHandled(): Promise<number> {
    if (this.handledUpTo === this.received) return Promise.resolve(this.handledUpTo);
    return new Promise((resolve) => this.handledWaiters.push({ seq: this.received, resolve }));
  }

  private markHandled(seq: number): void {
    this.completedAhead.add(seq);
    while (this.completedAhead.delete(this.handledUpTo + 1)) this.handledUpTo++;
    if (this.handledWaiters.length === 0) return;
    this.handledWaiters = this.handledWaiters.filter((w) => (w.seq <= this.handledUpTo ? (w.resolve(this.handledUpTo), false) : true));
  }

  // --- timers and the end -------------------------------------------------------------------

  /** One timer per session: the authentication deadline first, then idle detection. */
  private armTimer(ms: number): void {
    clearTimeout(this.timer);
    if (ms <= 0) return;
    this.timer = setTimeout(() => this.onTimer(), ms);
    this.timer.unref();
  }

  private onTimer(): void {
    const interval = this.core.config.c2s.idle_ping_interval * 1000;
    if (this.phase === 'connected') return this.close(new StreamError('connection-timeout', 'authentication took too long'));
    const idleFor = Date.now() - this.stream.lastReceived;
    if (idleFor < interval) return this.armTimer(interval - idleFor);
    // Idle: the ping module asks the client (through the router, so the ping is a counted
    // stanza like any other) and closes the stream when no answer comes.
    if (!this.jid) return this.close(new StreamError('connection-timeout', 'no resource was bound'));
    void this.hostEntry!.hooks.fire('session/idle', { session: this });
    this.armTimer(interval);
  }

  private onClosed(error?: StreamError): void {
    clearTimeout(this.timer);
    this.options.onClosed(this);
    const host = this.hostEntry;
    if (!host || !this.jid || this.stream.closedCleanly || this.ended || !host.hooks.has('session/interrupted')) return this.end(error);
    // The connection dropped without a closing handshake: stream management may keep the
    // session for a resumption (XEP-0198); otherwise it ends now.
    this.hibernating = true;
    void host.hooks.fire('session/interrupted', { session: this }).then((kept) => {
      if (kept && this.hibernating) this.log.info('connection lost; session kept for resumption');
      else this.end(error);
    });
  }

  /**
   * Takes over the connection of `fresh`, a new stream of the same account that resumed this
   * session (XEP-0198): the old connection, if any is left, is dropped.
   */
  resumeOn(fresh: ClientSession): void {
    if (!this.stream.closed) {
      this.stream.setEvents({ header: () => {}, element: () => {}, closed: () => {} });
      this.stream.destroy();
    }
    this.stream = fresh.detach();
    this.stream.setEvents(this.streamEvents());
    this.remoteAddress = fresh.remoteAddress;
    this.hibernating = false;
    fresh.options.onResumed(this);
    this.armTimer(this.core.config.c2s.idle_ping_interval * 1000);
    this.log.info({ ip: this.remoteAddress }, 'session resumed');
  }

  /** Gives this session's connection away (to a session it resumed); this one is then gone. */
  private detach(): StreamTransport {
    this.ended = true;
    clearTimeout(this.timer);
    this.options.onClosed(this);
    return this.stream;
  }

  /** Ends the session for good: unregistered, unavailable to contacts, session/closed fired. */
  end(error?: StreamError): void {
    if (this.ended) return;
    this.ended = true;
    this.hibernating = false;
    clearTimeout(this.timer);
    if (!this.stream.closed) this.stream.close(error);
    this.core.sessions.remove(this);
    const host = this.hostEntry;
    if (!host || !this.jid) return;
    this.log.info({ condition: error?.condition }, 'session closed');
    const wasAvailable = this.presence !== undefined;
    this.presence = undefined;
    this.finished = (async () => {
      if (wasAvailable) {
        const unavailable = xml('presence', { type: 'unavailable', from: this.jid!.toString() });
        await host.hooks.fire('presence/broadcast', { session: this, stanza: unavailable, initial: false });
      }
      await host.hooks.fire('session/closed', { session: this, error });
    })();
    this.core.sessions.tearingDown(this.finished);
  }
}

/** The parser limits of a client stream, from [c2s]. */
export function clientLimits(core: ServerCore): XmlLimits {
  const c2s = core.config.c2s;
  return { maxStanzaBytes: c2s.max_stanza_size, maxDepth: c2s.max_depth, maxAttributes: c2s.max_attributes };
}

function randomResource(): string {
  return `starling-${randomBytes(6).toString('hex')}`;
}
