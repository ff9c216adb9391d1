// Which web pages may open XMPP sessions here (WebSocket and BOSH): the Origin header of a
// browser's request against [http] allowed_origins. Clients that are not browsers send no
// Origin and are let in (a cross-site page cannot leave it out).
import type { IncomingMessage } from 'node:http';
import type { ServerCore } from '../module-api/core.js';

export function originAllowed(core: ServerCore, req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  const allowed = core.config.http.allowed_origins;
  if (allowed.length > 0) return allowed.includes('*') || allowed.includes(origin);
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  // Same origin: a page this server served itself (the web client).
  if (req.headers.host !== undefined && url.host === req.headers.host.toLowerCase()) return true;
  const host = url.hostname.toLowerCase();
  if (core.hosts.has(host)) return true;
  const external = core.config.http.external_url;
  return external !== '' && new URL(external).hostname.toLowerCase() === host;
}
