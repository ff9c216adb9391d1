// Which served host an HTTP request is for, and the base URL its client reached us at: the
// Host header picks the host (a name no host serves gets a 404), http.external_url names the
// public base URL behind a reverse proxy, else the request's own scheme and Host make it (https
// when the request came over TLS, or through a trusted proxy saying the client used https).
import type { IncomingMessage } from 'node:http';

export interface Site {
  /** The served host (an XMPP domain). */
  domain: string;
  /** The public base URL, without a trailing slash: "https://example.org:5281", "https://example.org/xmpp". */
  base: string;
}

export interface SiteOptions {
  /** Whether a domain is served here. */
  serves(domain: string): boolean;
  /** http.external_url ("" when not set). */
  externalUrl: string;
  /** Whether the client reached us over https (directly or through a trusted proxy). */
  secure(req: IncomingMessage): boolean;
}

/** "example.org" or "example.org:5281"; a bracketed IPv6 literal or anything else is no host of ours. */
const HOST_HEADER = /^([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/i;

export function siteOf(req: IncomingMessage, o: SiteOptions): Site | undefined {
  const header = req.headers.host;
  const m = header === undefined ? null : HOST_HEADER.exec(header);
  if (!m) return undefined;
  const domain = m[1]!.toLowerCase().replace(/\.$/, '');
  if (!o.serves(domain)) return undefined;
  if (o.externalUrl) return { domain, base: o.externalUrl.replace(/\/+$/, '') };
  return { domain, base: `${o.secure(req) ? 'https' : 'http'}://${header!.toLowerCase()}` };
}

/** The WebSocket URL (RFC 7395) under a base URL: ws:// for http://, wss:// for https://. */
export function websocketUrl(base: string): string {
  return `${base.replace(/^http/, 'ws')}/xmpp-websocket`;
}

/** The BOSH URL (XEP-0206) under a base URL. */
export function boshUrl(base: string): string {
  return `${base}/http-bind`;
}
