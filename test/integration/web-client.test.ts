// The built-in web client page over real sockets: the page, set up for the host and its
// WebSocket URL, with its Content-Security-Policy; the Converse.js assets with their content
// types, caching and compression; nothing outside the package's dist directory; / redirects;
// http.web_client = false turns it all off.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { startTestServer } from '../helpers/harness.js';
import { httpBases, httpGet } from '../helpers/http.js';
import { findConverse } from '../../src/web/web-client.js';
import { safeRelativePath } from '../../src/web/static-files.js';

const converse = findConverse();
const ASSETS = `/chat/assets/${converse.version}`;

/** One raw request line, for paths a URL parser would normalise ("/../"). */
function rawStatus(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
    let data = '';
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

function pageSettings(html: string): { assets: string; settings: Record<string, unknown> } {
  const json = /<script id="starling-web-client" type="application\/json">(.*?)<\/script>/s.exec(html)?.[1];
  if (!json) throw new Error('no settings in the page');
  return JSON.parse(json) as { assets: string; settings: Record<string, unknown> };
}

t.test('the page, its assets and their headers', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'] });
  const { http, https } = httpBases(ts);
  const httpPort = Number(new URL(http).port);

  const page = await httpGet(`${http}/chat`);
  t.equal(page.status, 200);
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  t.equal(page.headers['cache-control'], 'no-cache');
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  t.equal(page.headers['x-frame-options'], 'DENY');
  t.equal(page.headers['referrer-policy'], 'no-referrer');
  const csp = String(page.headers['content-security-policy']);
  t.match(csp, /default-src 'none'/);
  t.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/, 'scripts from the server only, no eval');
  t.match(csp, new RegExp(`connect-src 'self' [^;]*ws://localhost:${httpPort}(;| |$)`), 'the WebSocket origin');
  t.match(csp, /frame-ancestors 'none'/);
  t.notMatch(csp, /https?:\/\/(?!localhost)/, 'no other host');
  const { assets, settings } = pageSettings(page.text);
  t.equal(assets, `chat/assets/${converse.version}`);
  t.match(settings, {
    websocket_url: `ws://localhost:${httpPort}/xmpp-websocket`,
    authentication: 'login',
    default_domain: 'localhost',
    locked_domain: 'localhost',
    view_mode: 'fullscreen',
    discover_connection_methods: false,
  });
  t.notMatch(page.text, /(src|href)="https?:/, 'nothing in the page from another host');

  const tls = await httpGet(`${https}/chat`);
  t.equal(pageSettings(tls.text).settings.websocket_url, `wss://localhost:${new URL(https).port}/xmpp-websocket`, 'over HTTPS: wss');

  const types: [string, RegExp][] = [
    ['converse.min.js', /^text\/javascript; charset=utf-8$/],
    ['converse.min.css', /^text\/css; charset=utf-8$/],
    ['emoji.json', /^application\/json/],
    ['curve25519_compiled.wasm', /^application\/wasm$/],
    ['webfonts/muli.ttf', /^font\/ttf$/],
    ['images/favicon.ico', /^image\//],
    ['sounds/msg_received.ogg', /^audio\/ogg$/],
  ];
  for (const [file, type] of types) {
    const res = await httpGet(`${http}${ASSETS}/${file}`, { 'Accept-Encoding': 'gzip' });
    t.equal(res.status, 200, `${file}: served`);
    t.match(res.headers['content-type'], type, `${file}: ${String(res.headers['content-type'])}`);
    t.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', `${file}: cached for good (the version is in the path)`);
    t.ok(res.body.equals(readFileSync(path.join(converse.dir, file))), `${file}: the package's bytes`);
  }
  const js = await httpGet(`${http}${ASSETS}/converse.min.js`, { 'Accept-Encoding': 'gzip, br' });
  t.equal(js.headers['content-encoding'], 'gzip', 'text is gzipped when accepted');
  const plain = await httpGet(`${http}${ASSETS}/converse.min.js`);
  t.equal(plain.headers['content-encoding'], undefined, 'and sent as is otherwise');
  t.equal(Number(plain.headers['content-length']), plain.body.length);
  const again = await httpGet(`${http}${ASSETS}/converse.min.js`, { 'If-None-Match': String(plain.headers.etag) });
  t.equal(again.status, 304, 'If-None-Match: 304');

  const init = await httpGet(`${http}/chat/init.js`);
  t.equal(init.status, 200);
  t.equal(init.headers['content-type'], 'text/javascript; charset=utf-8');

  t.equal((await httpGet(`${http}/chat/assets/0.0.1/converse.min.js`)).status, 404, 'another version: 404');
  t.equal((await httpGet(`${http}${ASSETS}/sounds/README`)).status, 404, 'a file of no served type: 404');
  t.equal((await httpGet(`${http}${ASSETS}/images`)).status, 404, 'a directory: 404');
  t.equal((await httpGet(`${http}/chatroom`)).status, 404);
  t.equal((await httpGet(`${http}/chat`, { Host: 'not-served.example' })).status, 404, 'a Host not served: 404');

  const root = await httpGet(`${http}/`);
  t.equal(root.status, 302, '/ redirects to the page');
  t.equal(root.headers.location, 'chat');
  const slash = await httpGet(`${http}/chat/`);
  t.equal(slash.status, 302);
  t.equal(new URL(String(slash.headers.location), `${http}/chat/`).pathname, '/chat');
  t.equal((await httpGet(`${http}/nothing`)).status, 404, 'the root route is / only');
  t.equal((await httpGet(`${http}/nothing`, {}, 'POST')).status, 404, 'another method elsewhere: 404, not 405');
});

t.test('path traversal: nothing outside the dist directory', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'] });
  const port = Number(new URL(httpBases(ts).http).port);
  const targets = [
    `${ASSETS}/../package.json`,
    `${ASSETS}/%2e%2e/package.json`,
    `${ASSETS}/%2E%2E%2Fpackage.json`,
    `${ASSETS}/images/..%2F..%2Fpackage.json`,
    `${ASSETS}/..%5Cpackage.json`,
    `${ASSETS}/%2Fetc%2Fpasswd`,
    `${ASSETS}//etc/passwd`,
    `${ASSETS}/converse.min.js%00.png`,
    `${ASSETS}/%E0%A4%A`,
    `${ASSETS}/../../../../../../etc/passwd`,
    `/chat/assets/${converse.version}/../../../package.json`,
  ];
  for (const target of targets) {
    const status = await rawStatus(port, target);
    t.match(status, /^HTTP\/1\.1 (400|404)/, `${target}: ${status}`);
  }
  t.equal(safeRelativePath('images/logo/x.svg'), path.join('images', 'logo', 'x.svg'));
  for (const bad of ['..', '../x', 'a/../../x', '%2e%2e/x', 'a//b', '/etc/passwd', 'a\\..\\b', 'x%00', '%zz', './x', ''])
    t.equal(safeRelativePath(bad), undefined, `"${bad}" refused`);
});

t.test('http.web_client = false: no page, no assets; host-meta stays', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'], http: { web_client: false } });
  const { http } = httpBases(ts);
  t.equal((await httpGet(`${http}/chat`)).status, 404);
  t.equal((await httpGet(`${http}${ASSETS}/converse.min.js`)).status, 404);
  t.equal((await httpGet(`${http}/`)).status, 404);
  t.equal((await httpGet(`${http}/.well-known/host-meta`)).status, 200);
});

t.test('http.web_client_at_root = false: / is not redirected', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'], http: { web_client_at_root: false } });
  const { http } = httpBases(ts);
  t.equal((await httpGet(`${http}/`)).status, 404);
  t.equal((await httpGet(`${http}/chat`)).status, 200);
});

t.test('http.external_url: the page connects to the public WebSocket URL', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'], http: { external_url: 'https://chat.example.org/xmpp' } });
  const page = await httpGet(`${httpBases(ts).http}/chat`);
  t.equal(pageSettings(page.text).settings.websocket_url, 'wss://chat.example.org/xmpp/xmpp-websocket');
  t.match(String(page.headers['content-security-policy']), /connect-src 'self' https:\/\/chat\.example\.org wss:\/\/chat\.example\.org(;| )/);
});
