// An outgoing server stream for one (local domain, remote domain) pair: finds and connects to
// the remote server, negotiates TLS (STARTTLS or direct), authenticates with SASL EXTERNAL
// when the peer offers it, else with dialback, then carries our stanzas. Stanzas wait in a
// queue until then and are bounced to their senders if it fails (remote-server-not-found
// when the server cannot be found or reached, remote-server-timeout when it was too slow or
// dialback failed). It also carries our <db:verify/> requests to the remote domain's
// authoritative server (XEP-0220 §2.1.2) and matches the answers to them; answers nobody
// asked for are ignored. Idle streams are closed.
import type tls from 'node:tls';
import { xml, type Element } from '@xmpp/xml';
import type { Logger } from '../log.js';
import { StreamError, type StanzaErrorCondition } from '../stream/errors.js';
import { XmlStream } from '../stream/xml-stream.js';
import { NS } from '../xml/namespaces.js';
import { ConnectError, connectAny } from './connect.js';
import { limitsOf, type S2sContext, type Verdict } from './context.js';
import { dialbackElement, dialbackErrorCondition } from './dialback.js';
import { peerCertificate, type PeerCertificate } from './identity.js';
import { is, qname } from './names.js';
import { ResolveError } from './resolve.js';

type State = 'connecting' | 'opening' | 'tls' | 'sasl' | 'restarting' | 'dialback' | 'ready' | 'closed';

interface PendingVerify {
  id: string;
  key: string;
  sent: boolean;
  resolve(verdict: Verdict): void;
  timer: NodeJS.Timeout;
}

/** Most stanzas held for a remote domain while its stream is being set up. */
const MAX_QUEUE = 1000;

export class OutboundStream {
  private state: State = 'connecting';
  private stream: XmlStream | undefined;
  private header: Element | undefined;
  private readonly queue: Element[] = [];
  private readonly verifies = new Map<string, PendingVerify>();
  private triedExternal = false;
  private sentDialbackKey = false;
  private peer: PeerCertificate | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActivity = Date.now();
  /** How the stream authenticated, once ready. */
  authMethod: 'sasl-external' | 'dialback' | undefined;
  directTls = false;
  log: Logger;
  /** Settles once the connection is gone (or was never made). */
  readonly finished: Promise<void>;
  private settle!: () => void;

  constructor(
    readonly local: string,
    readonly remote: string,
    private readonly ctx: S2sContext,
    /** Called once when the stream can take no more stanzas (closing or failed). */
    private readonly onGone: (stream: OutboundStream) => void,
  ) {
    this.log = ctx.log.child({ s2s: 'out', local, remote });
    this.finished = new Promise((resolve) => (this.settle = resolve));
  }

  /** Usable for new stanzas: not closing or failed. */
  get open(): boolean {
    return this.state !== 'closed' && !(this.stream?.closing ?? false);
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  get secure(): boolean {
    return this.stream?.encrypted ?? false;
  }

  start(): void {
    const ms = this.ctx.options.connect_timeout * 1000;
    if (ms > 0) {
      this.deadline = setTimeout(() => this.fail('remote-server-timeout', `no authenticated stream to ${this.remote} within ${this.ctx.options.connect_timeout} s`), ms);
      this.deadline.unref();
    }
    void this.connect(ms > 0 ? Date.now() + ms : Infinity);
  }

  /** Sends a stanza now, or once the stream is ready. */
  send(stanza: Element): void {
    if (this.state === 'ready') {
      this.lastActivity = Date.now();
      this.stream!.send(stanza);
      return;
    }
    if (this.queue.length >= MAX_QUEUE) {
      this.ctx.bounce(stanza, 'resource-constraint', `too many stanzas waiting for ${this.remote}`);
      return;
    }
    this.queue.push(stanza);
  }

  /** Asks this remote domain (the authoritative server) about a key given to our stream `id`. */
  verify(id: string, key: string): Promise<Verdict> {
    return new Promise((resolve) => {
      const existing = this.verifies.get(id);
      if (existing) existing.resolve({ type: 'error', condition: 'remote-server-timeout', text: 'superseded by a new request' });
      const timer = setTimeout(
        () => {
          if (this.verifies.get(id) === pending) this.verifies.delete(id);
          resolve({ type: 'error', condition: 'remote-server-timeout', text: `${this.remote} did not answer the dialback check in time` });
        },
        this.ctx.options.connect_timeout * 1000 || 2 ** 31 - 1,
      );
      timer.unref();
      const pending: PendingVerify = {
        id,
        key,
        sent: false,
        timer,
        resolve: (v) => {
          clearTimeout(timer);
          this.verifies.delete(id);
          resolve(v);
        },
      };
      this.verifies.set(id, pending);
      this.sendVerifies();
    });
  }

  /** Closes the stream (idle, shutdown): our closing tag; queued stanzas bounce. */
  close(error?: StreamError): void {
    if (this.state === 'closed') return;
    this.fail('remote-server-timeout', error?.text ?? 'the stream was closed', error);
  }

  // --- connection and negotiation -----------------------------------------------------------

  private async connect(deadline: number): Promise<void> {
    let targets;
    try {
      targets = await this.ctx.resolve(this.remote);
    } catch (err) {
      return this.fail('remote-server-not-found', err instanceof ResolveError ? err.message : `cannot look up ${this.remote}: ${(err as Error).message}`);
    }
    if (this.isClosed()) return;
    let connected;
    try {
      connected = await connectAny(
        targets,
        () => this.ctx.tls.clientOptions(this.local, this.remote, true),
        deadline,
        (target, reason) => this.log.info({ host: target.host, port: target.port, directTls: target.directTls, reason }, 'connection attempt failed'),
      );
    } catch (err) {
      const timedOut = err instanceof ConnectError && err.timedOut;
      return this.fail(timedOut ? 'remote-server-timeout' : 'remote-server-not-found', `cannot connect to ${this.remote}: ${(err as Error).message}`);
    }
    if (this.isClosed()) {
      connected.socket.destroy();
      return;
    }
    const { socket, target } = connected;
    this.directTls = target.directTls;
    this.log = this.log.child({ ip: socket.remoteAddress, port: target.port });
    this.log.info({ host: target.host, directTls: target.directTls }, 'connected');
    socket.setNoDelay(true);
    this.stream = new XmlStream(socket, limitsOf(this.ctx.options), NS.SERVER, this.log, {
      header: (h) => this.onHeader(h),
      element: (el) => this.onElement(el),
      closing: () => this.gone(),
      closed: (err) => this.onClosed(err),
    });
    if (this.stream.encrypted) this.peer = peerCertificate(socket as tls.TLSSocket);
    this.state = 'opening';
    this.openStream();
  }

  /** (A method, so TypeScript does not narrow the state across an await.) */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private openStream(): void {
    this.stream!.open({ 'xmlns:db': NS.DIALBACK, from: this.local, to: this.remote });
  }

  private onHeader(header: Element): void {
    if (header.name !== 'stream:stream' || header.attrs['xmlns:stream'] !== NS.STREAM || header.attrs.xmlns !== NS.SERVER) {
      throw new StreamError('invalid-namespace', 'expected a jabber:server stream');
    }
    this.header = header;
    if (!header.attrs.id) throw new StreamError('invalid-xml', 'the stream header has no id');
    const version = header.attrs.version;
    if (!version || Number(version.split('.')[0]) < 1) {
      // A pre-XMPP 1.0 server: no stream features, dialback right away, and no TLS.
      if (this.ctx.options.require_encryption)
        return this.fail('remote-server-not-found', `${this.remote} cannot do TLS (no XMPP 1.0 stream), which is required`, new StreamError('policy-violation', 'TLS is required'));
      this.startDialback();
    }
  }

  private onElement(el: Element): void {
    const name = qname(el, this.header);
    if (is(name, NS.STREAM, 'features')) return this.onFeatures(el);
    if (is(name, NS.STREAM, 'error')) return this.onStreamError(el);
    if (is(name, NS.TLS, 'proceed') && this.state === 'tls') return void this.upgrade();
    if (is(name, NS.TLS, 'failure')) return this.fail('remote-server-not-found', `${this.remote} refused STARTTLS`);
    if (name.ns === NS.SASL && this.state === 'sasl') return this.onSasl(name.local, el);
    if (is(name, NS.DIALBACK, 'result')) return this.onDialbackResult(el);
    if (is(name, NS.DIALBACK, 'verify')) return this.onDialbackVerify(el);
    // Our outgoing stream carries nothing back but negotiation (no XEP-0288 bidirectional streams).
    this.log.warn({ element: el.name }, 'unexpected element on an outgoing stream: ignored');
  }

  private onFeatures(features: Element): void {
    const stream = this.stream!;
    if (this.state === 'restarting') return this.becomeReady('sasl-external');
    if (!stream.encrypted) {
      if (features.getChild('starttls', NS.TLS)) {
        this.state = 'tls';
        stream.send(xml('starttls', { xmlns: NS.TLS }));
        return;
      }
      if (this.ctx.options.require_encryption) {
        return this.fail('remote-server-not-found', `${this.remote} does not offer TLS, which is required`, new StreamError('policy-violation', 'TLS is required'));
      }
    } else if (this.ctx.options.secure_auth) {
      const problem = this.peer?.problemFor(this.remote) ?? 'no certificate';
      if (this.peer?.validFor(this.remote) !== true) {
        return this.fail('remote-server-not-found', `${this.remote}: ${problem} (secure_auth is on)`, new StreamError('policy-violation', 'a valid certificate is required'));
      }
    }
    const mechanisms =
      features
        .getChild('mechanisms', NS.SASL)
        ?.getChildren('mechanism')
        .map((m) => m.getText().trim()) ?? [];
    if (stream.encrypted && !this.triedExternal && mechanisms.includes('EXTERNAL')) {
      this.triedExternal = true;
      this.state = 'sasl';
      stream.send(xml('auth', { xmlns: NS.SASL, mechanism: 'EXTERNAL' }, Buffer.from(this.local).toString('base64')));
      return;
    }
    const dialback = features.getChild('dialback', NS.DIALBACK_FEATURES) !== undefined || this.header?.attrs['xmlns:db'] === NS.DIALBACK;
    if (!dialback) return this.fail('remote-server-not-found', `no authentication method in common with ${this.remote} (offered: ${mechanisms.join(', ') || 'none'})`);
    this.startDialback();
  }

  private async upgrade(): Promise<void> {
    const stream = this.stream!;
    try {
      const secure = await stream.upgradeToTlsClient(this.ctx.tls.clientOptions(this.local, this.remote, false));
      this.peer = peerCertificate(secure);
      this.log.info({ protocol: secure.getProtocol(), trusted: this.peer.validFor(this.remote), problem: this.peer.problemFor(this.remote) }, 'TLS established');
      this.state = 'opening';
      this.openStream();
    } catch (err) {
      this.fail('remote-server-not-found', `TLS with ${this.remote} failed: ${(err as Error).message}`);
      stream.destroy();
    }
  }

  private onSasl(local: string, el: Element): void {
    if (local === 'success') {
      this.state = 'restarting';
      this.stream!.restart();
      this.openStream();
      return;
    }
    if (local === 'failure') {
      const condition = el.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text')?.name;
      this.log.info({ condition }, 'SASL EXTERNAL refused; trying dialback');
      this.startDialback();
      return;
    }
    this.fail('remote-server-not-found', `unexpected SASL element <${local}/> from ${this.remote}`);
  }

  private startDialback(): void {
    this.state = 'dialback';
    this.sentDialbackKey = true;
    const key = this.ctx.keys.generate(this.remote, this.local, this.header!.attrs.id!);
    this.stream!.send(dialbackElement('result', { from: this.local, to: this.remote }, key));
    this.sendVerifies();
  }

  private onDialbackResult(el: Element): void {
    const { from, to, type } = el.attrs;
    if (this.state !== 'dialback' || !this.sentDialbackKey || from !== this.remote || to !== this.local) {
      this.log.warn({ from, to, type }, 'dialback result for a request not made on this stream: ignored');
      return;
    }
    if (type === 'valid') return this.becomeReady('dialback');
    if (type === 'invalid') return this.fail('internal-server-error', `${this.remote} rejected our dialback key`);
    const condition = dialbackErrorCondition(el) ?? 'undefined-condition';
    this.fail('remote-server-timeout', `${this.remote} answered our dialback with an error: ${condition}`);
  }

  /** The authoritative server's answer to one of our verification requests (matched, else ignored). */
  private onDialbackVerify(el: Element): void {
    const { from, to, id, type } = el.attrs;
    const pending = id === undefined ? undefined : this.verifies.get(id);
    if (!pending || !pending.sent || from !== this.remote || to !== this.local) {
      this.log.warn({ from, to, id, type }, 'dialback verification answer for a request never made: ignored');
      return;
    }
    if (type === 'valid') return pending.resolve({ type: 'valid' });
    if (type === 'invalid') return pending.resolve({ type: 'invalid' });
    const condition = dialbackErrorCondition(el);
    pending.resolve({
      type: 'error',
      condition: condition === 'item-not-found' ? 'remote-server-not-found' : 'remote-server-timeout',
      text: `${this.remote} could not check the key: ${condition ?? type ?? 'no type'}`,
    });
  }

  /** Verification requests go out once TLS is done and no SASL exchange is running. */
  private sendVerifies(): void {
    if (this.state !== 'dialback' && this.state !== 'ready') return;
    for (const pending of this.verifies.values()) {
      if (pending.sent) continue;
      pending.sent = true;
      this.stream!.send(dialbackElement('verify', { from: this.local, to: this.remote, id: pending.id }, pending.key));
    }
  }

  private becomeReady(method: 'sasl-external' | 'dialback'): void {
    this.state = 'ready';
    this.authMethod = method;
    clearTimeout(this.deadline);
    this.log.info({ method, queued: this.queue.length, tls: this.secure }, 'authenticated: stanzas flow');
    this.ctx.linked(this.local, this.remote, 'out');
    this.lastActivity = Date.now();
    for (const stanza of this.queue.splice(0)) this.stream!.send(stanza);
    this.sendVerifies();
    this.armIdle();
  }

  private armIdle(): void {
    const idleMs = this.ctx.options.idle_timeout * 1000;
    if (idleMs <= 0) return;
    clearTimeout(this.idleTimer);
    const wait = Math.max(0, this.lastActivity + idleMs - Date.now());
    this.idleTimer = setTimeout(() => {
      if (this.state !== 'ready') return;
      if (Date.now() - this.lastActivity >= idleMs && this.verifies.size === 0) {
        this.log.info('idle: closing');
        this.gone();
        this.stream!.close();
      } else this.armIdle();
    }, wait + 10);
    this.idleTimer.unref();
  }

  // --- the end -------------------------------------------------------------------------------

  private onStreamError(el: Element): void {
    const condition = el.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === NS.STREAMS_ERROR)?.name;
    const text = el.getChild('text', NS.STREAMS_ERROR)?.getText();
    this.log.info({ condition, text }, 'stream error from the remote server');
    this.fail(
      this.state === 'ready' ? 'remote-server-timeout' : 'remote-server-not-found',
      `${this.remote} closed the stream: ${condition ?? 'stream error'}${text ? ` (${text})` : ''}`,
    );
  }

  private onClosed(error?: StreamError): void {
    if (this.state !== 'closed') {
      this.fail(this.state === 'ready' ? 'remote-server-timeout' : 'remote-server-not-found', `the connection to ${this.remote} closed${error ? `: ${error.condition}` : ''}`);
    }
    this.log.debug('connection closed');
    this.settle();
  }

  /** Ends the stream: what waits bounces with `condition`, verifications fail. */
  private fail(condition: StanzaErrorCondition, text: string, streamError?: StreamError): void {
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    clearTimeout(this.deadline);
    clearTimeout(this.idleTimer);
    if (!wasReady) this.log.warn({ condition, queued: this.queue.length }, text);
    this.gone();
    for (const stanza of this.queue.splice(0)) this.ctx.bounce(stanza, condition, text);
    for (const pending of [...this.verifies.values()]) {
      pending.resolve({ type: 'error', condition: condition === 'remote-server-not-found' ? 'remote-server-not-found' : 'remote-server-timeout', text });
    }
    if (!this.stream || this.stream.closed) this.settle();
    else if (!this.stream.closing) this.stream.close(streamError);
  }

  private goneCalled = false;
  private gone(): void {
    if (this.goneCalled) return;
    this.goneCalled = true;
    this.onGone(this);
  }
}
