// XEP-0156 host-meta over real sockets: the XRD and JRD documents list the web transports' URLs
// (WebSocket and BOSH) derived from the request (scheme of the listener, Host header) or from http.external_url,
// readable from any origin; a Host that is not a served host gets nothing.
import t from 'tap';
import { startTestServer } from '../helpers/harness.js';
import { httpBases, httpGet } from '../helpers/http.js';

const WS = 'urn:xmpp:alt-connections:websocket';
const BOSH = 'urn:xmpp:alt-connections:xbosh';

function xrdLinks(xrd: string): Record<string, string> {
  const links: Record<string, string> = {};
  for (const m of xrd.matchAll(/<Link rel="([^"]+)" href="([^"]+)"\/>/g)) links[m[1]!] = m[2]!;
  return links;
}

function jrdLinks(jrd: string): Record<string, string> {
  const links: Record<string, string> = {};
  for (const l of (JSON.parse(jrd) as { links: { rel: string; href: string }[] }).links) links[l.rel] = l.href;
  return links;
}

t.test('both formats, from the request: the listener scheme and the Host header', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'] });
  const { http, https } = httpBases(ts);
  const authority = (base: string) => base.replace(/^https?:\/\//, '');

  const xrd = await httpGet(`${https}/.well-known/host-meta`);
  t.equal(xrd.status, 200);
  t.match(xrd.headers['content-type'], /^application\/xrd\+xml/);
  t.equal(xrd.headers['access-control-allow-origin'], '*', 'CORS: readable from any origin');
  t.match(xrd.text, /^<\?xml version='1.0' encoding='utf-8'\?>\n<XRD xmlns="http:\/\/docs.oasis-open.org\/ns\/xri\/xrd-1.0">/);
  t.same(xrdLinks(xrd.text), { [WS]: `wss://${authority(https)}/xmpp-websocket`, [BOSH]: `${https}/http-bind` }, 'https: wss and https URLs');

  const jrd = await httpGet(`${http}/.well-known/host-meta.json`);
  t.equal(jrd.status, 200);
  t.match(jrd.headers['content-type'], /^application\/json/);
  t.equal(jrd.headers['access-control-allow-origin'], '*');
  t.same(jrdLinks(jrd.text), { [WS]: `ws://${authority(http)}/xmpp-websocket`, [BOSH]: `${http}/http-bind` }, 'plain http: ws and http URLs');

  const preflight = await httpGet(`${http}/.well-known/host-meta.json`, { Origin: 'https://elsewhere.example', 'Access-Control-Request-Method': 'GET' }, 'OPTIONS');
  t.equal(preflight.status, 204, 'a CORS preflight is answered');
  t.equal(preflight.headers['access-control-allow-origin'], '*');

  const forwarded = await httpGet(`${http}/.well-known/host-meta.json`, { 'X-Forwarded-Proto': 'https' });
  t.equal(jrdLinks(forwarded.text)[WS], `wss://${authority(http)}/xmpp-websocket`, 'X-Forwarded-Proto from a proxy (loopback) counts');

  const other = await httpGet(`${http}/.well-known/host-meta`, { Host: 'not-served.example' });
  t.equal(other.status, 404, 'a Host that is not served here: 404');
  t.equal((await httpGet(`${http}/.well-known/host-meta`, { Host: '127.0.0.1' })).status, 404, 'an address as Host: 404');
  t.equal((await httpGet(`${http}/.well-known/host-meta.xml`)).status, 404, 'another name under the prefix: 404');
  t.equal((await httpGet(`${http}/.well-known/host-meta`, {}, 'POST')).status, 405);
});

t.test('http.external_url: the public URLs of a reverse proxy', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'], http: { external_url: 'https://chat.example.org/xmpp/' } });
  const { http } = httpBases(ts);
  const jrd = await httpGet(`${http}/.well-known/host-meta.json`);
  t.same(jrdLinks(jrd.text), { [WS]: 'wss://chat.example.org/xmpp/xmpp-websocket', [BOSH]: 'https://chat.example.org/xmpp/http-bind' });
  const xrd = await httpGet(`${http}/.well-known/host-meta`);
  t.same(xrdLinks(xrd.text), { [WS]: 'wss://chat.example.org/xmpp/xmpp-websocket', [BOSH]: 'https://chat.example.org/xmpp/http-bind' });
});

t.test('host-meta lists only the transports that are on; none: no host-meta, no web client', async (t) => {
  const boshOnly = await startTestServer(t, { modules_enabled: ['sasl'], http: { websocket: false } });
  const only = await httpGet(`${httpBases(boshOnly).http}/.well-known/host-meta.json`);
  t.same(Object.keys(jrdLinks(only.text)), [BOSH], 'BOSH alone');
  t.equal((await httpGet(`${httpBases(boshOnly).http}/chat`)).status, 404, 'the page needs the WebSocket');

  const none = await startTestServer(t, { modules_enabled: ['sasl', 'http_upload'], http: { websocket: false, bosh: false } });
  const { http } = httpBases(none);
  t.equal((await httpGet(`${http}/.well-known/host-meta`)).status, 404);
  t.equal((await httpGet(`${http}/.well-known/host-meta.json`)).status, 404);
});

t.test('X-Forwarded-Proto counts only from http.proxies', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'], http: { proxies: [] } });
  const { http } = httpBases(ts);
  const jrd = await httpGet(`${http}/.well-known/host-meta.json`, { 'X-Forwarded-Proto': 'https' });
  t.match(jrdLinks(jrd.text)[WS], /^ws:\/\//, 'a client that is no proxy cannot make the URLs wss');
});
