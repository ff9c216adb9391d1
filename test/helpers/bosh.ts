// A raw BOSH client (XEP-0124/0206) on fetch: each write is one request with the next rid, the
// elements of every response are collected, the session's attributes kept.
import type { Element } from '@xmpp/xml';
import { ElementCollector } from './collector.js';
import { parseElement } from '../../src/xml/parse.js';
import { DOMAIN } from './harness.js';

export const HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const XBOSH = 'urn:xmpp:xbosh';

export interface BoshResponse {
  status: number;
  text: string;
  body: Element;
}

export class RawBosh extends ElementCollector {
  readonly responses: BoshResponse[] = [];
  sid = '';
  rid = Math.floor(Math.random() * 1e9);

  constructor(
    readonly url: string,
    private readonly headers: Record<string, string> = {},
  ) {
    super();
  }

  /** Creates the session; resolves with the creation response's body. */
  async create(wait = 5, extra: Record<string, string> = {}): Promise<Element> {
    const attrs = { to: DOMAIN, wait: String(wait), hold: '1', ver: '1.6', 'xml:lang': 'en', 'xmpp:version': '1.0', 'xmlns:xmpp': XBOSH, ...extra };
    const res = await this.request(this.rid++, attrs, '');
    this.sid = res.body.attrs.sid!;
    return res.body;
  }

  /** The serialised request body. */
  bodyText(rid: number, attrs: Record<string, string>, payload: string): string {
    const all = { rid: String(rid), ...(this.sid ? { sid: this.sid } : {}), ...attrs };
    const list = Object.entries(all)
      .map(([k, v]) => ` ${k}='${v}'`)
      .join('');
    return `<body xmlns='${HTTPBIND}'${list}>${payload}</body>`;
  }

  /** Posts a body with `rid` as given (for ordering tests); its elements are collected. */
  async request(rid: number, attrs: Record<string, string>, payload: string): Promise<BoshResponse> {
    return this.post(this.bodyText(rid, attrs, payload));
  }

  async post(text: string): Promise<BoshResponse> {
    const res = await fetch(this.url, { method: 'POST', body: text, headers: { 'Content-Type': 'text/xml; charset=utf-8', ...this.headers } });
    const body = await res.text();
    const parsed = parseElement(body);
    const response = { status: res.status, text: body, body: parsed };
    this.responses.push(response);
    for (const c of parsed.children) if (typeof c !== 'string') this.elements.push(c);
    this.wake();
    return response;
  }

  /** One request with the next rid, not waited on (its answer's elements are collected). */
  write(payload: string, attrs: Record<string, string> = {}): void {
    void this.request(this.rid++, attrs, payload).catch(() => {});
  }
}
