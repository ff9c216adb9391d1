// Test clients: @xmpp/client for the happy paths, and a raw socket for what a library won't send.
import net from 'node:net';
import tls from 'node:tls';
import { client, xml, type Client } from '@xmpp/client';
import { promise as eventPromise } from '@xmpp/events';
import type { Element } from '@xmpp/xml';
import { XmlStreamParser } from '../../src/xml/parser.js';
import { DOMAIN, PASSWORD, type TestServer } from './harness.js';

export { xml };

export interface ConnectOptions {
  resource?: string;
  password?: string;
  /** 'starttls' (default) or 'direct' TLS (XEP-0368). */
  transport?: 'starttls' | 'direct';
  /** Send initial presence once online (default true). */
  presence?: boolean;
}

export interface TestClient {
  xmpp: Client;
  jid: string;
  /** Resolves with the next stanza matching `match` (stanzas seen since connect are kept). */
  next(match: (el: Element) => boolean, timeoutMs?: number): Promise<Element>;
  send(el: Element): Promise<void>;
  /**
   * An XEP-0199 ping to the server, and its answer (a result, or an error where no module
   * answers pings). Once it is in, the server has handled every stanza this client sent before
   * it (one at a time per session), and this client has everything the server wrote to it
   * before the answer.
   */
  roundTrip(): Promise<void>;
  /** Takes the kept stanzas matching `match` (received, not taken by `next`). */
  take(match: (el: Element) => boolean): Element[];
  stop(): Promise<void>;
}

let roundTrips = 0;

/**
 * Whether nothing matching `match` has reached `receiver`, checked after a round trip of each
 * of `senders` (what they sent is handled) and then of `receiver` (what was written to it is
 * in): no waiting on a clock.
 */
export async function nothingArrived(receiver: TestClient, match: (el: Element) => boolean, ...senders: TestClient[]): Promise<boolean> {
  for (const sender of senders) await sender.roundTrip();
  await receiver.roundTrip();
  return receiver.take(match).length === 0;
}

type ClientOptions = Parameters<typeof client>[0];

/**
 * @xmpp/client with one fix: its open() starts listening for the server's stream header only
 * after its own header is written, and a fast server answers before that (a TimeoutError now
 * and then, mostly after STARTTLS or on direct TLS). Here the listener comes first.
 */
export function xmppClient(options: ClientOptions): Client {
  const xmpp = client(options);
  xmpp.open = async function open(this: Client, { domain, lang }: { domain: string; lang?: string }) {
    this._status('opening');
    const header = this.headerElement();
    header.attrs.to = domain;
    header.attrs['xml:lang'] = lang;
    this.root = header;
    this._attachParser(new this.Parser());
    const opened = eventPromise<Element>(this, 'open', 'error', this.timeout);
    await this.write(this.header(header));
    return opened;
  };
  return xmpp;
}

export interface WrapOptions {
  /** Send initial presence once online (default true). */
  presence?: boolean;
  /** How long `next` waits by default (ms; default 5000). */
  timeoutMs?: number;
  /** Answer the server's pings (XEP-0199), so idle checks never cut the client off (default false). */
  answerPings?: boolean;
}

/**
 * Starts `xmpp` (no reconnecting, errors left to the test) and wraps it as a TestClient: the
 * stanzas it receives are kept until a `next` takes them.
 */
export async function startClient(xmpp: Client, options: WrapOptions = {}): Promise<TestClient> {
  const defaultTimeoutMs = options.timeoutMs ?? 5000;
  xmpp.reconnect.stop();
  xmpp.on('error', () => {});
  const inbox: Element[] = [];
  const waiters: { match: (el: Element) => boolean; resolve: (el: Element) => void }[] = [];
  xmpp.on('stanza', (el: Element) => {
    const i = waiters.findIndex((w) => w.match(el));
    if (i === -1) inbox.push(el);
    else waiters.splice(i, 1)[0]!.resolve(el);
  });
  if (options.answerPings) {
    xmpp.on('stanza', (el: Element) => {
      if (el.name === 'iq' && el.attrs.type === 'get' && el.getChild('ping', 'urn:xmpp:ping')) {
        void xmpp.send(xml('iq', { type: 'result', id: el.attrs.id, to: el.attrs.from }));
      }
    });
  }
  let address;
  try {
    address = await xmpp.start();
  } catch (err) {
    await xmpp.stop().catch(() => {});
    throw err;
  }
  if (options.presence !== false) await xmpp.send(xml('presence'));
  const client: TestClient = {
    xmpp,
    jid: address.toString(),
    next(match, timeoutMs = defaultTimeoutMs) {
      const i = inbox.findIndex(match);
      if (i !== -1) return Promise.resolve(inbox.splice(i, 1)[0]!);
      return new Promise((resolve, reject) => {
        const waiter = { match, resolve: (el: Element) => (clearTimeout(timer), resolve(el)) };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no matching stanza within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    send: (el) => xmpp.send(el),
    async roundTrip() {
      const id = `round-trip-${++roundTrips}`;
      await xmpp.send(xml('iq', { type: 'get', id, to: address.domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      await client.next((el) => el.name === 'iq' && el.attrs.id === id && (el.attrs.type === 'result' || el.attrs.type === 'error'));
    },
    take(match) {
      const taken = inbox.filter(match);
      for (const el of taken) inbox.splice(inbox.indexOf(el), 1);
      return taken;
    },
    stop: async () => {
      await xmpp.stop().catch(() => {});
    },
  };
  return client;
}

export async function connect(ts: TestServer, local: string, options: ConnectOptions = {}): Promise<TestClient> {
  const direct = options.transport === 'direct';
  const xmpp = xmppClient({
    service: direct ? `xmpps://127.0.0.1:${ts.tlsPort}` : `xmpp://127.0.0.1:${ts.port}`,
    domain: DOMAIN,
    username: local,
    password: options.password ?? PASSWORD,
    resource: options.resource,
  });
  return startClient(xmpp, { presence: options.presence });
}

/** The stanza error condition of an error stanza (RFC 6120 section 8.3). */
export function errorCondition(el: Element): string | undefined {
  return el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas')?.name;
}

export interface WaitOptions {
  /** How long `until` and `element` wait by default (ms). */
  timeoutMs: number;
  /** What is waited on, for the time-out's message. */
  what: string;
  /** Whether `until` gives up as soon as the connection is closed. */
  failOnClose: boolean;
}

/**
 * An XML stream over a socket: writes strings, collects the parsed headers and elements, waits
 * on them. RawStream speaks it as a client; a test may speak it as a server by extending this.
 */
export class XmlSocket {
  readonly elements: Element[] = [];
  headers: Element[] = [];
  closed = false;
  ended = false;
  protected socket: net.Socket;
  private parser: XmlStreamParser;
  private waiters: (() => void)[] = [];

  constructor(
    socket: net.Socket,
    private readonly wait: WaitOptions,
  ) {
    this.socket = socket;
    this.parser = this.newParser();
    this.listen(socket);
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  private newParser(): XmlStreamParser {
    return new XmlStreamParser(
      { maxStanzaBytes: 10_000_000, maxDepth: 100, maxAttributes: 100 },
      {
        streamStart: (h) => (this.headers.push(h), this.wake()),
        stanza: (el) => (this.elements.push(el), this.wake()),
        streamEnd: () => ((this.ended = true), this.wake()),
        error: () => this.wake(),
      },
    );
  }

  private listen(socket: net.Socket): void {
    socket.on('data', (d) => this.parser.write(d));
    socket.on('close', () => ((this.closed = true), this.wake()));
    socket.on('error', () => {});
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Goes on over `socket` (the TLS one after STARTTLS) with a new stream. */
  protected useSocket(socket: net.Socket): void {
    this.socket = socket;
    this.restart();
    this.listen(socket);
  }

  /** A new stream on the same socket (after SASL, after STARTTLS): the parser starts over. */
  restart(): void {
    this.parser = this.newParser();
  }

  write(data: string | Buffer): boolean {
    return this.socket.write(data);
  }

  /** Waits until `check` returns a value (re-checked on each arrival). */
  async until<T>(check: () => T | undefined | false, timeoutMs = this.wait.timeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value) return value;
      const have = this.elements.map((e) => e.name).join(', ');
      if (this.wait.failOnClose && this.closed) throw new Error(`the connection closed (have: ${have})`);
      if (Date.now() > deadline) throw new Error(`timed out waiting on ${this.wait.what} (have: ${have})`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Waits for an element with this name (and takes it off the list). */
  async element(name: string, timeoutMs?: number): Promise<Element> {
    return this.until(() => {
      const i = this.elements.findIndex((e) => e.name === name);
      return i === -1 ? undefined : this.elements.splice(i, 1)[0];
    }, timeoutMs);
  }

  /** The condition name of a received stream error. */
  async streamError(timeoutMs?: number): Promise<string> {
    const error = await this.element('stream:error', timeoutMs);
    return error.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-streams')!.name;
  }

  close(): void {
    this.socket.destroy();
  }
}

let rawRoundTrips = 0;

/**
 * The raw stream's round trip (see TestClient.roundTrip): an XEP-0199 ping to the server and
 * its answer (taken off the list). Once it is in, the server has handled what was written
 * before it, and everything it wrote to this stream before the answer is in `s.elements`.
 */
export async function rawRoundTrip(s: XmlSocket, to = DOMAIN): Promise<void> {
  const id = `raw-round-trip-${++rawRoundTrips}`;
  s.write(`<iq type='get' id='${id}' to='${to}'><ping xmlns='urn:xmpp:ping'/></iq>`);
  const answer = await s.until(() => s.elements.find((e) => e.name === 'iq' && e.attrs.id === id));
  s.elements.splice(s.elements.indexOf(answer), 1);
}

/** A raw client-to-server XML stream over a socket, for what a client library won't send. */
export class RawStream extends XmlSocket {
  private constructor(socket: net.Socket) {
    super(socket, { timeoutMs: 5000, what: 'the raw stream', failOnClose: false });
  }

  static async open(port: number, direct = false): Promise<RawStream> {
    const socket = direct ? tls.connect({ host: '127.0.0.1', port, servername: DOMAIN, rejectUnauthorized: false }) : net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => {
      socket.once(direct ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    return new RawStream(socket);
  }

  /** Opens a stream: connects, sends the header, reads the server's features. */
  static async started(port: number, direct = false): Promise<{ s: RawStream; features: Element }> {
    const s = await RawStream.open(port, direct);
    s.header();
    return { s, features: await s.element('stream:features') };
  }

  header(to = DOMAIN): void {
    this.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'>`);
  }

  /** STARTTLS on the raw stream; the parser restarts for the new stream. */
  async startTls(): Promise<void> {
    this.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await this.element('proceed');
    const secure = tls.connect({ socket: this.socket, servername: DOMAIN, rejectUnauthorized: false });
    await new Promise((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket.removeAllListeners('data');
    this.useSocket(secure);
  }
}

export { PASSWORD };

/** The features Bind 2 (XEP-0386) offers to enable inline, from the pre-authentication features. */
export function bind2Inline(features: Element): string[] {
  const bind = features.getChild('authentication', 'urn:xmpp:sasl:2')?.getChild('inline')?.getChild('bind', 'urn:xmpp:bind:0');
  return (bind?.getChild('inline')?.getChildren('feature') ?? []).map((f) => f.attrs.var!);
}

/** SASL2 (XEP-0388) PLAIN with a Bind 2 request (`tag`, and `inline` XML inside); resolves with the JID bound. */
export async function sasl2Bind(s: RawStream, user: string, tag: string, inline: string, password = PASSWORD): Promise<string> {
  s.write(
    `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</initial-response>` +
      `<bind xmlns='urn:xmpp:bind:0'><tag>${tag}</tag>${inline}</bind></authenticate>`,
  );
  return (await s.element('success')).getChildText('authorization-identifier')!;
}

/** A raw stream after STARTTLS, PLAIN and the stream restart: authenticated, nothing bound. */
export async function rawAuthenticated(port: number, user: string, password = PASSWORD): Promise<RawStream> {
  const s = await RawStream.open(port);
  s.header();
  await s.element('stream:features');
  await s.startTls();
  s.header();
  await s.element('stream:features');
  s.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
  const outcome = await s.until(() => s.elements.find((e) => e.name === 'success' || e.name === 'failure'));
  s.elements.splice(s.elements.indexOf(outcome), 1);
  if (outcome.name !== 'success') throw new Error(`authentication failed: ${outcome.toString()}`);
  s.restart();
  s.header();
  await s.element('stream:features');
  return s;
}

/** A raw stream logged in with STARTTLS, PLAIN and RFC 6120 bind; `resource` asked for when given. */
export async function rawLogin(port: number, user: string, resource?: string, password = PASSWORD): Promise<{ s: RawStream; bound: Element }> {
  const s = await rawAuthenticated(port, user, password);
  const res = resource === undefined ? '' : `<resource>${resource}</resource>`;
  s.write(`<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>${res}</bind></iq>`);
  const bound = await s.element('iq');
  return { s, bound };
}
