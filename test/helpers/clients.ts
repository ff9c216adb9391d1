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
  stop(): Promise<void>;
}

type ClientOptions = Parameters<typeof client>[0];

/**
 * @xmpp/client with one fix: its open() starts listening for the server's stream header only
 * after its own header is written, and a fast server answers before that (a TimeoutError now
 * and then, mostly after STARTTLS or on direct TLS). Here the listener comes first.
 */
export function xmppClient(options: ClientOptions): Client {
  const xmpp = client(options) as Client & Record<string, any>;
  xmpp.open = async function open(this: any, { domain, lang }: { domain: string; lang?: string }) {
    this._status('opening');
    const header = this.headerElement();
    header.attrs.to = domain;
    header.attrs['xml:lang'] = lang;
    this.root = header;
    this._attachParser(new this.Parser());
    const opened = eventPromise(this, 'open', 'error', this.timeout);
    await this.write(this.header(header));
    return opened;
  };
  return xmpp;
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
  xmpp.reconnect.stop();
  xmpp.on('error', () => {});
  const inbox: Element[] = [];
  const waiters: { match: (el: Element) => boolean; resolve: (el: Element) => void }[] = [];
  xmpp.on('stanza', (el: Element) => {
    const i = waiters.findIndex((w) => w.match(el));
    if (i === -1) inbox.push(el);
    else waiters.splice(i, 1)[0]!.resolve(el);
  });
  let address;
  try {
    address = await xmpp.start();
  } catch (err) {
    await xmpp.stop().catch(() => {});
    throw err;
  }
  if (options.presence !== false) await xmpp.send(xml('presence'));
  return {
    xmpp,
    jid: address.toString(),
    next(match, timeoutMs = 5000) {
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
    stop: async () => {
      await xmpp.stop().catch(() => {});
    },
  };
}

/** A raw XML stream over a socket: writes strings, collects parsed elements. */
export class RawStream {
  readonly elements: Element[] = [];
  headers: Element[] = [];
  closed = false;
  ended = false;
  private socket: net.Socket;
  private parser: XmlStreamParser;
  private waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.parser = this.newParser();
    this.listen(socket);
  }

  static async open(port: number, direct = false): Promise<RawStream> {
    const socket = direct
      ? tls.connect({ host: '127.0.0.1', port, servername: DOMAIN, rejectUnauthorized: false })
      : net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => {
      socket.once(direct ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    return new RawStream(socket);
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

  write(data: string | Buffer): boolean {
    return this.socket.write(data);
  }

  header(to = DOMAIN): void {
    this.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${to}' version='1.0'>`);
  }

  /** Waits until `check` returns a value (re-checked on each arrival). */
  async until<T>(check: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value) return value;
      if (Date.now() > deadline) throw new Error('timed out waiting on the raw stream');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Waits for an element with this name (and takes it off the list). */
  async element(name: string, timeoutMs = 5000): Promise<Element> {
    return this.until(() => {
      const i = this.elements.findIndex((e) => e.name === name);
      return i === -1 ? undefined : this.elements.splice(i, 1)[0];
    }, timeoutMs);
  }

  /** The condition name of a received stream error. */
  async streamError(timeoutMs = 5000): Promise<string> {
    const error = await this.element('stream:error', timeoutMs);
    return error.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-streams')!.name;
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
    this.socket = secure;
    this.parser = this.newParser();
    this.listen(secure);
  }

  restart(): void {
    this.parser = this.newParser();
    this.socket.removeAllListeners('data');
    this.socket.on('data', (d) => this.parser.write(d));
  }

  close(): void {
    this.socket.destroy();
  }
}

export { PASSWORD };

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
