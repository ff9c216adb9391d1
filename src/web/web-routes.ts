// The server's own HTTP routes for web clients: host-meta (XEP-0156), listing the web
// transports that are on, and the built-in web client page (http.web_client), which connects
// over the WebSocket transport. The transports are routes of their own (src/web/websocket.ts).
import type { TLSSocket } from 'node:tls';
import type { ServerCore } from '../module-api/core.js';
import { OperatorError, reasonOf } from '../operator-error.js';
import { HOST_META_PATH, hostMetaHandler, type WebTransport } from './host-meta.js';
import type { SiteOptions } from './site.js';
import { WEB_CLIENT_PATH, findConverse, webClientHandlers } from './web-client.js';

export function serveWebRoutes(core: Pick<ServerCore, 'config' | 'hosts' | 'http' | 'log'>): void {
  const { config, hosts, http } = core;
  const site: SiteOptions = {
    serves: (domain) => hosts.has(domain),
    externalUrl: config.http.external_url,
    secure: (req) => http.peer(req, (req.socket as TLSSocket).encrypted === true).https,
  };
  const transports: WebTransport[] = [...(config.http.websocket ? ['websocket' as const] : []), ...(config.http.bosh ? ['bosh' as const] : [])];
  if (transports.length > 0) http.route(['GET', 'OPTIONS'], HOST_META_PATH, hostMetaHandler(site, transports));
  if (!config.http.web_client) return;
  if (!config.http.websocket) {
    core.log.warn('http.web_client is on but http.websocket is off: the web client page is not served (it connects over WebSocket)');
    return;
  }
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
