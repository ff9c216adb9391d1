// The built-in web client: Converse.js from the npm package (nothing from a CDN, nothing
// fetched at run time), at /chat, set up for the host the Host header names and its WebSocket
// URL, so a user types only a username and a password. Its assets are served under a path with
// the package's version in it (/chat/assets/<version>/...), so they are cached for good.
// The page's Content-Security-Policy allows 'self' and what Converse.js needs: WebAssembly
// compilation (the OMEMO library), inline style attributes (its templates set them), the
// server's own HTTP origin for uploads and media, and its WebSocket origin.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { sendStatus } from '../net/http.js';
import { siteOf, websocketUrl, type Site, type SiteOptions } from './site.js';
import { StaticFiles } from './static-files.js';
import { WEB_CLIENT_INIT } from './web-client-init.js';

export const WEB_CLIENT_PATH = '/chat';

export interface ConverseDist {
  dir: string;
  version: string;
}

/** Where the converse.js package's dist directory is, and its version; throws when it is not installed. */
export function findConverse(): ConverseDist {
  const main = createRequire(import.meta.url).resolve('converse.js/dist/converse.min.js');
  const dir = path.dirname(main);
  const { version } = JSON.parse(readFileSync(path.join(dir, '..', 'package.json'), 'utf8')) as { version: string };
  return { dir, version };
}

export interface WebClientOptions extends SiteOptions {
  converse: ConverseDist;
  /** The base URL of `domain`'s HTTP services (uploads), for the media the page may show. */
  serviceBase(domain: string): string;
}

/** The page's settings for Converse.js (https://conversejs.org/docs/configuration/). */
export function converseSettings(site: Site, mediaHosts: readonly string[]): Record<string, unknown> {
  return {
    websocket_url: websocketUrl(site.base),
    discover_connection_methods: false,
    authentication: 'login',
    default_domain: site.domain,
    locked_domain: site.domain,
    view_mode: 'fullscreen',
    allow_registration: false,
    allowed_image_domains: mediaHosts,
    allowed_audio_domains: mediaHosts,
    allowed_video_domains: mediaHosts,
    loglevel: 'warn',
  };
}

function origin(url: string): string {
  return new URL(url).origin;
}

export function contentSecurityPolicy(site: Site, serviceBase: string): string {
  const own = [...new Set([origin(site.base), origin(serviceBase)])].filter((o) => o !== 'null');
  return [
    "default-src 'none'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    `img-src 'self' data: blob: ${own.join(' ')}`,
    `media-src 'self' data: blob: ${own.join(' ')}`,
    "font-src 'self'",
    `connect-src 'self' ${[...own, origin(websocketUrl(site.base))].join(' ')}`,
    "worker-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** JSON inside a <script> element: nothing in it can close the element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function webClientPage(site: Site, assets: string, settings: Record<string, unknown>): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat · ${escapeHtml(site.domain)}</title>
<link rel="icon" href="${assets}/images/favicon.ico">
<link rel="stylesheet" href="${assets}/converse.min.css">
<script id="starling-web-client" type="application/json">${scriptJson({ assets, settings })}</script>
<script type="module" src="${assets}/converse.min.js"></script>
<script type="module" src="chat/init.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>This chat needs JavaScript.</noscript>
</body>
</html>
`;
}

/** The handlers of the web client's routes: `page` under /chat, `root` for / (a redirect). */
export function webClientHandlers(o: WebClientOptions) {
  const assetsPrefix = `${WEB_CLIENT_PATH}/assets/${o.converse.version}/`;
  // Relative to the page (/chat), so the page works under a reverse proxy's path too.
  const assets = `chat/assets/${o.converse.version}`;
  const files = new StaticFiles(o.converse.dir, 'public, max-age=31536000, immutable');

  const page = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const site = siteOf(req, o);
    if (!site) return sendStatus(res, 404);
    if (url.pathname.startsWith(assetsPrefix)) return files.serve(req, res, url.pathname.slice(assetsPrefix.length));
    if (url.pathname === `${WEB_CLIENT_PATH}/init.js`) return sendText(req, res, 'text/javascript; charset=utf-8', WEB_CLIENT_INIT);
    if (url.pathname === `${WEB_CLIENT_PATH}/`) return redirect(res, '../chat');
    if (url.pathname !== WEB_CLIENT_PATH) return sendStatus(res, 404);
    const serviceBase = o.serviceBase(site.domain);
    const mediaHosts = [...new Set([site.domain, new URL(site.base).hostname, new URL(serviceBase).hostname])];
    res.setHeader('Content-Security-Policy', contentSecurityPolicy(site, serviceBase));
    return sendText(req, res, 'text/html; charset=utf-8', webClientPage(site, assets, converseSettings(site, mediaHosts)));
  };

  const root = (req: IncomingMessage, res: ServerResponse): void => {
    if (!siteOf(req, o)) return sendStatus(res, 404);
    redirect(res, 'chat');
  };

  return { page, root };
}

function sendText(req: IncomingMessage, res: ServerResponse, type: string, body: string): void {
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache' });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { Location: location, 'Content-Length': 0, 'Cache-Control': 'no-cache' });
  res.end();
}
