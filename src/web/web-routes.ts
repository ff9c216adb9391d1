// The server's own HTTP routes for web clients: host-meta (XEP-0156) and the built-in web
// client page (http.web_client). The WebSocket and BOSH transports they point to are routes
// of their own.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ServerCore } from '../module-api/core.js';
import { OperatorError, reasonOf } from '../operator-error.js';
import { HOST_META_PATH, hostMetaHandler } from './host-meta.js';
import type { SiteOptions } from './site.js';
import { WEB_CLIENT_PATH, findConverse, webClientHandlers } from './web-client.js';

export function serveWebRoutes(core: Pick<ServerCore, 'config' | 'hosts' | 'http'>): void {
  const { config, hosts, http } = core;
  const proxies = new Set(config.http.proxies);
  const site: SiteOptions = {
    serves: (domain) => hosts.has(domain),
    externalUrl: config.http.external_url,
    secure: (req) => (req.socket as TLSSocket).encrypted === true || (proxies.has(unmapped(req.socket.remoteAddress)) && forwardedProto(req) === 'https'),
  };
  http.route(['GET', 'OPTIONS'], HOST_META_PATH, hostMetaHandler(site));
  if (!config.http.web_client) return;
  let converse;
  try {
    converse = findConverse();
  } catch (err) {
    throw new OperatorError(`http.web_client: the converse.js package is not installed (${reasonOf(err)}); install it, or set http.web_client = false`);
  }
  const handlers = webClientHandlers({ ...site, converse, serviceBase: (domain) => http.baseUrl(domain) });
  http.route('GET', WEB_CLIENT_PATH, handlers.page);
  if (config.http.web_client_at_root) http.route('GET', '/', handlers.root, { exact: true });
}

function unmapped(ip = ''): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

function forwardedProto(req: IncomingMessage): string {
  const value = req.headers['x-forwarded-proto'];
  return (Array.isArray(value) ? value.join(',') : (value ?? '')).split(',').pop()!.trim().toLowerCase();
}
