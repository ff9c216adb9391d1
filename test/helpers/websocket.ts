// A raw XMPP-over-WebSocket client (RFC 7395) on the `ws` package, for what a client library
// won't send: each message is one element, parsed on its own.
import type { Element } from '@xmpp/xml';
import WebSocket from 'ws';
import { ElementCollector } from './collector.js';
import { parseElement } from '../../src/xml/parse.js';
import { DOMAIN, PASSWORD } from './harness.js';
import { scramLogin } from './scram-client.js';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

export class RawWebSocket extends ElementCollector {
  /** The messages as received. */
  readonly received: string[] = [];
  closed = false;
  closeCode = 0;

  private constructor(readonly ws: WebSocket) {
    super();
    ws.on('message', (data: Buffer) => {
      this.received.push(data.toString('utf8'));
      try {
        this.elements.push(parseElement(data.toString('utf8')));
      } catch {
        this.elements.push(parseElement(`<unparsable>${Buffer.from(data).toString('base64')}</unparsable>`));
      }
      this.wake();
    });
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      this.wake();
    });
    ws.on('error', () => {});
  }

  /** Connects to `url` with the xmpp subprotocol (or the `protocols` given). */
  static connect(url: string, protocols: string[] = ['xmpp'], headers: Record<string, string> = {}): Promise<RawWebSocket> {
    const ws = new WebSocket(url, protocols, { rejectUnauthorized: false, headers });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawWebSocket(ws)));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`refused: ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  /** The HTTP status of a refused connection (0 when it was accepted, then closed). */
  static async refusal(url: string, protocols: string[], headers: Record<string, string> = {}): Promise<number> {
    try {
      (await RawWebSocket.connect(url, protocols, headers)).cut();
      return 0;
    } catch (err) {
      return (err as { status?: number }).status ?? -1;
    }
  }

  write(data: string): void {
    this.ws.send(data);
  }

  open(to = DOMAIN): void {
    this.write(`<open xmlns='${FRAMING}' to='${to}' version='1.0'/>`);
  }

  async streamError(): Promise<string> {
    const error = await this.element('stream:error');
    return error.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-streams')!.name;
  }

  /** Drops the connection without the closing handshake. */
  cut(): void {
    this.ws.terminate();
  }
}

/** Opens the stream, authenticates with SCRAM-SHA-256 (RFC 6120 SASL) and restarts; resolves with the post-auth features. */
export async function wsAuthenticate(s: RawWebSocket, user: string, password = PASSWORD): Promise<Element> {
  s.open();
  const features = await s.element('stream:features');
  const mechanisms =
    features
      .getChild('mechanisms')
      ?.getChildren('mechanism')
      .map((m) => m.text()) ?? [];
  if (!mechanisms.includes('SCRAM-SHA-256')) throw new Error(`no SCRAM-SHA-256 offered: ${features.toString()}`);
  const { result, serverSignatureOk } = await scramLogin(s, { mechanism: 'SCRAM-SHA-256', username: user, password });
  if (!serverSignatureOk) throw new Error(`SCRAM failed: ${result.toString()}`);
  s.open();
  await s.element('open');
  return s.element('stream:features');
}

/** wsAuthenticate, then RFC 6120 resource binding; resolves with the full JID. */
export async function wsLogin(s: RawWebSocket, user: string, resource: string): Promise<string> {
  await wsAuthenticate(s, user);
  s.write(`<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
  const bound = await s.until(() => s.elements.find((e) => e.name === 'iq' && e.attrs.id === 'bind'));
  s.elements.splice(s.elements.indexOf(bound), 1);
  return bound.getChild('bind')!.getChildText('jid')!;
}
