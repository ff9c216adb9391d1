// An incoming server stream: another server connects to us to send its stanzas. We check the
// header (is the 'to' ours?), offer STARTTLS, then SASL EXTERNAL (only when its certificate
// is valid for the domain it claims) and dialback. A domain pair (its domain, ours) becomes
// authenticated by SASL EXTERNAL or by dialback (XEP-0220): a certificate valid for the domain,
// else a check with the domain's authoritative server (which the manager does over an
// outgoing stream); several pairs may share the stream (multiplexing). We also answer
// <db:verify/> questions about keys we handed out (authoritative role).
//
// Safety (RFC 6120 §13, XEP-0220 §4): a stanza whose 'from' domain is not authenticated with
// its 'to' domain on this stream ends the stream with <not-authorized/>; a 'to' we do not
// serve with <host-unknown/>; addresses are prepared again (RFC 7622) before routing; dialback
// answers ('type' set) are never accepted on an incoming stream; stanzas are limited to
// max_stanza_size (512 KiB) while they arrive.
import type net from 'node:net';
import type tls from 'node:tls';
import { xml, type Element } from '@xmpp/xml';
import { JidError, parseJid, type Jid } from '../jid.js';
import type { Logger } from '../log.js';
import { prepareDomain, PrecisError } from '../precis.js';
import { StreamError, type StanzaErrorCondition } from '../stream/errors.js';
import { XmlStream, streamId } from '../stream/xml-stream.js';
import { NS } from '../xml/namespaces.js';
import { limitsOf, type S2sContext, type Verdict } from './context.js';
import { dialbackElement } from './dialback.js';
import { peerCertificate, type PeerCertificate } from './identity.js';
import { is, isStanza, qname } from './names.js';

/** Dialback checks one stream may have running at once. */
const MAX_PENDING_DIALBACK = 16;

export class InboundStream {
  readonly id = streamId();
  /** The id of our current stream header (new on each restart): what dialback keys are bound to. */
  private currentId = '';
  private readonly stream: XmlStream;
  private header: Element | undefined;
  /** Our domain, from the 'to' of the first header. */
  local: string | undefined;
  /** The domain the peer claims in its header's 'from', if any. */
  remote: string | undefined;
  /** Authenticated "remote local" domain pairs. */
  private readonly pairs = new Set<string>();
  private readonly pendingDialback = new Set<string>();
  private peer: PeerCertificate | undefined;
  private saslDone = false;
  private tlsRunning = false;
  private timer: NodeJS.Timeout | undefined;
  private lastStanza = Date.now();
  /** Stanzas are routed one after another, in the order they came. */
  private chain: Promise<void> = Promise.resolve();
  /** How each remote domain authenticated, for logs and diagnostics. */
  readonly methods = new Map<string, 'sasl-external' | 'dialback' | 'dialback+certificate'>();
  log: Logger;

  constructor(
    socket: net.Socket,
    readonly directTls: boolean,
    private readonly ctx: S2sContext,
    private readonly onClosedCb: (stream: InboundStream) => void,
  ) {
    this.log = ctx.log.child({ s2s: 'in', sid: this.id, ip: socket.remoteAddress });
    this.stream = new XmlStream(socket, limitsOf(ctx.options), NS.SERVER, this.log, {
      header: (h) => this.onHeader(h),
      element: (el) => this.onElement(el),
      closed: (err) => this.onClosed(err),
    });
    if (this.stream.encrypted) this.peer = peerCertificate(socket as tls.TLSSocket);
    socket.setNoDelay(true);
    this.armDeadline();
  }

  get secure(): boolean {
    return this.stream.encrypted;
  }

  get closed(): boolean {
    return this.stream.closing;
  }

  /** The remote domains authenticated on this stream. */
  get authenticated(): string[] {
    return [...this.methods.keys()];
  }

  close(error?: StreamError): void {
    this.stream.close(error);
  }

  // --- header and features -------------------------------------------------------------------

  private onHeader(header: Element): void {
    this.currentId = streamId();
    if (header.name !== 'stream:stream' || header.attrs['xmlns:stream'] !== NS.STREAM) {
      this.stream.open({ 'xmlns:db': NS.DIALBACK, id: this.currentId });
      throw new StreamError('invalid-namespace', 'the stream element must be stream:stream in the streams namespace');
    }
    const from = header.attrs.from === undefined ? undefined : safeDomain(header.attrs.from);
    // Old dialback-only servers may leave 'to' out: the domain pairs of <db:result/> say it then.
    const to = header.attrs.to === undefined ? this.local : safeDomain(header.attrs.to);
    const attrs: Record<string, string> = { 'xmlns:db': NS.DIALBACK, id: this.currentId };
    if (to && this.ctx.isLocal(to)) attrs.from = to;
    if (from) attrs.to = from;
    this.stream.open(attrs);
    if (header.attrs.xmlns !== NS.SERVER) throw new StreamError('invalid-namespace', `the default namespace must be ${NS.SERVER}`);
    if (header.attrs.from !== undefined && !from) throw new StreamError('invalid-from', `"${header.attrs.from}" is not a domain`);
    if (header.attrs.to !== undefined && (!to || !this.ctx.isLocal(to))) {
      throw new StreamError('host-unknown', `this server does not serve ${to ?? header.attrs.to}`);
    }
    if (this.local && this.local !== to) throw new StreamError('host-unknown', 'a stream restart may not switch domain');
    if (this.remote && from && this.remote !== from) throw new StreamError('invalid-from', 'a stream restart may not switch domain');
    const first = this.header === undefined;
    this.header = header;
    this.local = to;
    this.remote ??= from;
    if (first) this.log = this.log.child({ local: to, remote: from });
    const version = header.attrs.version;
    if (!version || Number(version.split('.')[0]) < 1) {
      // A pre-XMPP 1.0 server: no features, so no TLS.
      if (this.ctx.options.require_encryption) throw new StreamError('unsupported-version', 'XMPP 1.0 streams with TLS are required');
      return;
    }
    this.sendFeatures();
  }

  private sendFeatures(): void {
    const features = xml('stream:features');
    const options = this.ctx.options;
    if (!this.secure) {
      features.append(xml('starttls', { xmlns: NS.TLS }, options.require_encryption ? xml('required') : null));
      if (!options.require_encryption) features.append(dialbackFeature());
    } else {
      if (!this.saslDone && this.remote && this.peer?.validFor(this.remote)) {
        features.append(xml('mechanisms', { xmlns: NS.SASL }, xml('mechanism', {}, 'EXTERNAL')));
      }
      features.append(dialbackFeature());
    }
    this.stream.send(features);
  }

  // --- elements ------------------------------------------------------------------------------

  private onElement(el: Element): void {
    if (!this.header) throw new StreamError('not-well-formed', 'an element before the stream header');
    const name = qname(el, this.header);
    if (is(name, NS.STREAM, 'error')) {
      this.log.info({ error: el.toString().slice(0, 300) }, 'stream error from the remote server');
      return;
    }
    if (is(name, NS.TLS, 'starttls')) return void this.startTls();
    if (this.tlsRunning) throw new StreamError('not-authorized', 'nothing may follow <starttls/> before the TLS handshake');
    if (!this.secure && this.ctx.options.require_encryption) {
      throw new StreamError('policy-violation', 'TLS is required: negotiate STARTTLS first');
    }
    if (is(name, NS.SASL, 'auth')) return this.onAuth(el);
    if (is(name, NS.DIALBACK, 'result')) return this.onDialbackResult(el);
    if (is(name, NS.DIALBACK, 'verify')) return this.onDialbackVerify(el);
    if (isStanza(name)) return this.onStanza(el);
    throw new StreamError('unsupported-stanza-type', `<${el.name}/> is not expected on a server stream`);
  }

  private async startTls(): Promise<void> {
    if (this.secure || this.tlsRunning) {
      this.stream.send(xml('failure', { xmlns: NS.TLS }));
      return this.stream.close();
    }
    this.tlsRunning = true;
    this.stream.send(xml('proceed', { xmlns: NS.TLS }));
    try {
      const secure = await this.stream.upgradeWith((raw) => this.ctx.tls.acceptTls(raw, this.ctx.options.connect_timeout * 1000));
      this.peer = peerCertificate(secure);
      this.log.info(
        { protocol: secure.getProtocol(), certificate: this.peer.chainValid ? 'trusted' : this.peer.chainError, names: this.peer.names.slice(0, 5) },
        'TLS established',
      );
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 'TLS handshake failed');
      this.stream.destroy();
    } finally {
      this.tlsRunning = false;
    }
  }

  /** SASL EXTERNAL (XEP-0178): the certificate proves the domain of the stream header. */
  private onAuth(el: Element): void {
    const failure = (condition: string, text: string) => {
      this.log.info({ condition, text }, 'SASL EXTERNAL refused');
      this.stream.send(xml('failure', { xmlns: NS.SASL }, xml(condition), xml('text', { 'xml:lang': 'en' }, text)));
    };
    if (el.attrs.mechanism !== 'EXTERNAL') return failure('invalid-mechanism', 'only EXTERNAL is offered');
    if (this.saslDone) throw new StreamError('policy-violation', 'SASL was done already');
    const raw = el.getText().trim();
    let authzid = '';
    if (raw !== '' && raw !== '=') {
      const decoded = Buffer.from(raw, 'base64').toString('utf8');
      if (Buffer.from(decoded, 'utf8').toString('base64').replace(/=+$/, '') !== raw.replace(/=+$/, '')) return failure('incorrect-encoding', 'not base64');
      authzid = safeDomain(decoded) ?? '';
      if (!authzid) return failure('invalid-authzid', `"${decoded}" is not a domain`);
    }
    if (authzid && this.remote && authzid !== this.remote) return failure('invalid-authzid', 'the authorization identity must be the domain of the stream header');
    const domain = authzid || this.remote;
    if (!domain || !this.local) return failure('not-authorized', "SASL needs the domains of both servers in the stream header ('from' and 'to')");
    const problem = this.peer?.problemFor(domain) ?? 'no certificate';
    if (!this.peer?.validFor(domain)) {
      failure('not-authorized', problem);
      return this.stream.close();
    }
    this.saslDone = true;
    this.remote = domain;
    this.stream.send(xml('success', { xmlns: NS.SASL }));
    this.stream.restart();
    this.authenticate(domain, this.local!, 'sasl-external');
  }

  /** Step 1 of dialback, on the receiving side: the peer asks to send from `from` to `to`. */
  private onDialbackResult(el: Element): void {
    const { type } = el.attrs;
    if (type !== undefined) {
      this.log.warn({ from: el.attrs.from, to: el.attrs.to, type }, 'a dialback result (with a type) on an incoming stream: ignored');
      return;
    }
    const { from, to } = this.dialbackAddresses(el);
    const reply = (t: 'valid' | 'invalid' | 'error', condition?: StanzaErrorCondition) =>
      this.stream.send(dialbackElement('result', { from: to, to: from, type: t }, undefined, condition));
    if (!this.ctx.isLocal(to)) return reply('error', 'item-not-found');
    const pair = `${from} ${to}`;
    if (this.pairs.has(pair)) return reply('valid');
    if (this.pendingDialback.has(pair)) return;
    if (this.peer?.validFor(from)) {
      // A certificate valid for the domain is proof enough: no callback needed (XEP-0344).
      this.authenticate(from, to, 'dialback+certificate');
      return reply('valid');
    }
    if (this.ctx.options.secure_auth) {
      this.log.info({ from, problem: this.peer?.problemFor(from) ?? 'no certificate' }, 'dialback refused: a valid certificate is required (secure_auth)');
      return reply('error', 'not-authorized');
    }
    if (this.pendingDialback.size >= MAX_PENDING_DIALBACK) return reply('error', 'resource-constraint');
    this.pendingDialback.add(pair);
    this.armDeadline();
    const key = el.getText().trim();
    const id = this.currentId;
    this.log.debug({ from, to }, 'checking a dialback key with the authoritative server');
    void this.ctx
      .verify(to, from, id, key)
      .catch((err): Verdict => ({ type: 'error', condition: 'internal-server-error', text: (err as Error).message }))
      .then((verdict) => {
        this.pendingDialback.delete(pair);
        if (this.stream.closing) return;
        if (verdict.type === 'valid') {
          this.authenticate(from, to, 'dialback');
          reply('valid');
        } else if (verdict.type === 'invalid') {
          this.log.warn({ from, to }, 'the authoritative server says the dialback key is not its own: spoofing attempt?');
          reply('invalid');
          this.stream.close(new StreamError('not-authorized', `the dialback key is not valid for ${from}`));
        } else {
          this.log.info({ from, to, condition: verdict.condition, text: verdict.text }, 'dialback could not be checked');
          reply('error', verdict.condition);
        }
      });
  }

  /** The authoritative role: is this key one we gave out (for our stream to `from`)? */
  private onDialbackVerify(el: Element): void {
    const { type, id } = el.attrs;
    if (type !== undefined) {
      this.log.warn({ from: el.attrs.from, to: el.attrs.to, id, type }, 'a dialback verification answer on an incoming stream: ignored');
      return;
    }
    const { from, to } = this.dialbackAddresses(el);
    if (!id) throw new StreamError('improper-addressing', '<db:verify/> needs an id');
    this.armDeadline();
    if (!this.ctx.isLocal(to)) {
      this.stream.send(dialbackElement('verify', { from: to, to: from, id, type: 'error' }, undefined, 'item-not-found'));
      return;
    }
    const valid = this.ctx.keys.verify(from, to, id, el.getText());
    if (!valid) this.log.warn({ receiving: from, claimed: to }, 'asked about a dialback key that is not ours: someone is claiming to be us');
    this.stream.send(dialbackElement('verify', { from: to, to: from, id, type: valid ? 'valid' : 'invalid' }));
  }

  private dialbackAddresses(el: Element): { from: string; to: string } {
    const from = el.attrs.from === undefined ? undefined : safeDomain(el.attrs.from);
    const to = el.attrs.to === undefined ? undefined : safeDomain(el.attrs.to);
    if (!from || !to) throw new StreamError('improper-addressing', `<${el.name}/> needs valid 'from' and 'to' domains`);
    return { from, to };
  }

  private authenticate(remote: string, local: string, method: 'sasl-external' | 'dialback' | 'dialback+certificate'): void {
    this.pairs.add(`${remote} ${local}`);
    if (!this.methods.has(remote)) this.methods.set(remote, method);
    this.log.info({ remote, local, method, tls: this.secure }, 'remote domain authenticated');
    this.ctx.linked(local, remote, 'in');
    this.lastStanza = Date.now();
    this.armIdle();
  }

  // --- stanzas ------------------------------------------------------------------------------

  private onStanza(stanza: Element): void {
    if (this.pairs.size === 0) throw new StreamError('not-authorized', 'authenticate (SASL EXTERNAL or dialback) before sending stanzas');
    const { from: rawFrom, to: rawTo } = stanza.attrs;
    if (rawFrom === undefined || rawTo === undefined) throw new StreamError('improper-addressing', "stanzas between servers need 'from' and 'to'");
    let from: Jid;
    try {
      from = parseJid(rawFrom);
    } catch (err) {
      if (!(err instanceof JidError)) throw err;
      // Its domain may still be ours to judge: a bad domain is never authenticated.
      const domain = domainOf(rawFrom);
      if (!domain || !this.authenticatedFrom(domain)) throw new StreamError('not-authorized', `'from' ${rawFrom} is not an authenticated domain on this stream`);
      this.log.info({ from: rawFrom, reason: err.message }, 'a stanza with a malformed sender address: dropped');
      return;
    }
    const toDomain = domainOf(rawTo);
    if (!toDomain || !this.ctx.isLocal(toDomain)) throw new StreamError('host-unknown', `this server does not serve ${toDomain ?? rawTo}`);
    if (!this.pairs.has(`${from.domain} ${toDomain}`)) {
      throw new StreamError('not-authorized', `${from.domain} is not authenticated for ${toDomain} on this stream`);
    }
    stanza.attrs.from = from.toString();
    if (stanza.attrs.xmlns === NS.SERVER || stanza.attrs.xmlns === NS.CLIENT) delete stanza.attrs.xmlns;
    this.lastStanza = Date.now();
    let to: Jid | undefined;
    try {
      to = parseJid(rawTo);
      stanza.attrs.to = to.toString();
    } catch (err) {
      if (!(err instanceof JidError)) throw err;
      // The router answers a malformed 'to' with jid-malformed.
    }
    this.chain = this.chain.then(() => this.ctx.deliver(stanza)).catch((err) => this.log.error({ err }, 'routing an incoming stanza failed'));
  }

  private authenticatedFrom(domain: string): boolean {
    for (const pair of this.pairs) if (pair.startsWith(`${domain} `)) return true;
    return false;
  }

  // --- timers and the end --------------------------------------------------------------------

  /** Until a domain authenticates, the stream has connect_timeout (from its last negotiation step). */
  private armDeadline(): void {
    if (this.pairs.size > 0) return;
    clearTimeout(this.timer);
    const ms = this.ctx.options.connect_timeout * 1000;
    if (ms <= 0) return;
    this.timer = setTimeout(() => {
      if (this.pairs.size > 0) return;
      // A dialback check still running ends by itself (it has the same time limit).
      if (this.pendingDialback.size > 0) return this.armDeadline();
      this.close(new StreamError('connection-timeout', 'no domain authenticated in time'));
    }, ms);
    this.timer.unref();
  }

  /** Closing is the initiating server's job: we close an incoming stream idle for twice idle_timeout. */
  private armIdle(): void {
    clearTimeout(this.timer);
    const idleMs = this.ctx.options.idle_timeout * 2000;
    if (idleMs <= 0) return;
    const wait = Math.max(0, this.lastStanza + idleMs - Date.now());
    this.timer = setTimeout(() => {
      if (Date.now() - this.lastStanza >= idleMs) {
        this.log.info('idle: closing');
        this.close();
      } else this.armIdle();
    }, wait + 10);
    this.timer.unref();
  }

  private onClosed(error?: StreamError): void {
    clearTimeout(this.timer);
    this.log.info({ condition: error?.condition, domains: this.authenticated }, 'incoming stream closed');
    this.onClosedCb(this);
  }
}

function dialbackFeature(): Element {
  return xml('dialback', { xmlns: NS.DIALBACK_FEATURES }, xml('errors'));
}

function safeDomain(s: string): string | undefined {
  try {
    return prepareDomain(s);
  } catch (err) {
    if (err instanceof PrecisError) return undefined;
    throw err;
  }
}

/** The prepared domain part of a JID string (RFC 7622 §3.2), undefined when not valid. */
function domainOf(jid: string): string | undefined {
  const slash = jid.indexOf('/');
  const head = slash === -1 ? jid : jid.slice(0, slash);
  return safeDomain(head.slice(head.indexOf('@') + 1));
}
