// XEP-0156 discovery of the web connection methods: /.well-known/host-meta (XRD, RFC 6415) and
// /.well-known/host-meta.json (JRD), listing the WebSocket (RFC 7395) and BOSH (XEP-0206) URLs
// (those of the two that are on) of the host the Host header names. Readable from any origin (CORS *), as XEP-0156 asks, so a
// web client served elsewhere can discover them.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { xml } from '@xmpp/xml';
import { sendStatus } from '../net/http.js';
import { boshUrl, siteOf, websocketUrl, type SiteOptions } from './site.js';

export const HOST_META_PATH = '/.well-known/host-meta';
const NS_XRD = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';
export const REL_WEBSOCKET = 'urn:xmpp:alt-connections:websocket';
export const REL_BOSH = 'urn:xmpp:alt-connections:xbosh';

export interface HostMetaLink {
  rel: string;
  href: string;
}

/** The web transports served here; host-meta lists only those. */
export type WebTransport = 'websocket' | 'bosh';

export function hostMetaLinks(base: string, transports: readonly WebTransport[]): HostMetaLink[] {
  return transports.map((transport) => (transport === 'websocket' ? { rel: REL_WEBSOCKET, href: websocketUrl(base) } : { rel: REL_BOSH, href: boshUrl(base) }));
}

export function hostMetaXrd(links: readonly HostMetaLink[]): string {
  const doc = xml('XRD', { xmlns: NS_XRD }, ...links.map((l) => xml('Link', { rel: l.rel, href: l.href })));
  return `<?xml version='1.0' encoding='utf-8'?>\n${doc.toString()}\n`;
}

export function hostMetaJrd(links: readonly HostMetaLink[]): string {
  return `${JSON.stringify({ links }, null, 2)}\n`;
}

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
  'Access-Control-Max-Age': '86400',
};

/** The handler of GET/HEAD/OPTIONS under HOST_META_PATH. */
export function hostMetaHandler(o: SiteOptions, transports: readonly WebTransport[]) {
  return (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    for (const [name, value] of Object.entries(CORS)) res.setHeader(name, value);
    const json = url.pathname === `${HOST_META_PATH}.json`;
    if (!json && url.pathname !== HOST_META_PATH) return sendStatus(res, 404);
    const site = siteOf(req, o);
    if (!site) return sendStatus(res, 404);
    if (req.method === 'OPTIONS') {
      res.writeHead(204);
      return void res.end();
    }
    const links = hostMetaLinks(site.base, transports);
    const body = json ? hostMetaJrd(links) : hostMetaXrd(links);
    res.writeHead(200, {
      'Content-Type': json ? 'application/json; charset=utf-8' : 'application/xrd+xml; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'public, max-age=3600',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
