// XEP-0363 HTTP File Upload over real sockets: an XMPP client asks for a slot, node's fetch PUTs
// and GETs the file; the refused cases (size 0, too large, quota, wrong token, wrong size or
// type, second PUT, expired file, body past the limit) and HTML served inert.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { connect, xml, type TestClient } from '../helpers/clients.js';
import { startTestServer } from '../helpers/harness.js';
import { onPostgres } from '../helpers/databases.js';
import { parseJid } from '../../src/jid.js';

const NS = 'urn:xmpp:http:upload:0';
const SERVICE = 'upload.localhost';
const MAX = 1000;

const errorCondition = (el: Element) =>
  el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas')?.name;

async function iq(client: TestClient, type: 'get' | 'set', payload: Element, to: string): Promise<Element> {
  const id = `q${Math.random().toString(36).slice(2)}`;
  await client.send(xml('iq', { type, id, to }, payload));
  return client.next((el) => el.name === 'iq' && el.attrs.id === id);
}

const request = (client: TestClient, filename: string, size: number, contentType?: string) =>
  iq(client, 'get', xml('request', { xmlns: NS, filename, size: String(size), 'content-type': contentType }), SERVICE);

function urlsOf(reply: Element): { put: string; get: string } {
  const slot = reply.getChild('slot', NS);
  if (!slot) throw new Error(`no slot: ${reply.toString()}`);
  return { put: slot.getChild('put')!.attrs.url as string, get: slot.getChild('get')!.attrs.url as string };
}

const put = (url: string, body: Buffer | string, type = 'application/octet-stream', headers: Record<string, string> = {}) =>
  fetch(url, { method: 'PUT', body, headers: { 'Content-Type': type, ...headers } });

async function scenario(t: Test, storage: Record<string, unknown>): Promise<void> {
  const ts = await startTestServer(t, {
    ...storage,
    modules_enabled: ['sasl', 'ping', 'disco', 'http_upload'],
    modules: { http_upload: { max_file_size: MAX, quota: 1500 } },
  });
  for (const u of ['alice', 'bob']) await ts.addUser(u);
  const alice = await connect(ts, 'alice');
  const bob = await connect(ts, 'bob');
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));

  t.test('discovery', async (t) => {
    const items = await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }), 'localhost');
    t.ok(
      items
        .getChild('query')!
        .getChildren('item')
        .some((i) => i.attrs.jid === SERVICE),
      'the host lists the upload service',
    );
    const info = (await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), SERVICE)).getChild('query')!;
    t.ok(info.getChildren('identity').some((i) => i.attrs.category === 'store' && i.attrs.type === 'file'));
    t.ok(info.getChildren('feature').some((f) => f.attrs.var === NS));
    const field = info
      .getChild('x', 'jabber:x:data')!
      .getChildren('field')
      .find((f) => f.attrs.var === 'max-file-size');
    t.equal(field?.getChildText('value'), String(MAX), 'max-file-size in the form');
  });

  t.test('a slot, PUT, GET the same bytes; a second PUT is refused', async (t) => {
    const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));
    const { put: putUrl, get: getUrl } = urlsOf(await request(alice, 'picture.png', bytes.length, 'image/png'));
    t.match(getUrl, /^https:\/\/localhost:\d+\/upload\/upload\.localhost\/[A-Za-z0-9_-]{22}\/picture\.png$/);
    t.equal(putUrl.split('?')[0], getUrl, 'PUT and GET name the same file');

    const before = await fetch(getUrl);
    t.equal(before.status, 404, 'nothing to GET before the PUT');
    const preflight = await fetch(putUrl, { method: 'OPTIONS', headers: { Origin: 'https://web.example', 'Access-Control-Request-Method': 'PUT' } });
    t.equal(preflight.status, 204, 'CORS preflight');
    t.match(preflight.headers.get('access-control-allow-methods'), /PUT/);

    const res = await put(putUrl, bytes, 'image/png');
    t.equal(res.status, 201, 'uploaded');
    const got = await fetch(getUrl);
    t.equal(got.status, 200);
    t.same(Buffer.from(await got.arrayBuffer()), bytes, 'the same bytes');
    t.equal(got.headers.get('content-type'), 'image/png');
    t.match(got.headers.get('content-disposition'), /^inline/, 'an image is shown inline');
    t.match(got.headers.get('content-security-policy'), /default-src 'none'/);
    t.equal(got.headers.get('x-content-type-options'), 'nosniff');
    t.equal(got.headers.get('access-control-allow-origin'), '*');

    t.equal((await put(putUrl, bytes, 'image/png')).status, 409, 'a second PUT is refused');
    t.same(Buffer.from(await (await fetch(getUrl)).arrayBuffer()), bytes, 'and the file is unchanged');
  });

  t.test('HTML is served inert, as an attachment', async (t) => {
    const html = '<script>alert(document.cookie)</script>';
    const { put: putUrl, get: getUrl } = urlsOf(await request(alice, 'page.html', html.length, 'text/html'));
    t.equal((await put(putUrl, html, 'text/html')).status, 201);
    const got = await fetch(getUrl);
    t.match(got.headers.get('content-disposition'), /^attachment/);
    t.match(got.headers.get('content-security-policy'), /sandbox/);
    t.equal(got.headers.get('x-content-type-options'), 'nosniff');
  });

  t.test('refused in the IQ: size 0, too large, a bad name, the quota', async (t) => {
    t.equal(errorCondition(await request(alice, 'a.bin', 0)), 'bad-request', 'size 0');
    t.equal(errorCondition(await request(alice, '', 10)), 'bad-request', 'no file name');
    const tooLarge = await request(alice, 'big.bin', MAX + 1);
    t.equal(errorCondition(tooLarge), 'not-acceptable', 'too large');
    t.equal(tooLarge.getChild('error')?.getChild('file-too-large', NS)?.getChildText('max-file-size'), String(MAX), 'with the limit');

    const traversal = urlsOf(await request(alice, '../../etc/passwd', 5));
    t.match(traversal.get, /\/[A-Za-z0-9_-]{22}\/passwd$/, 'a path in the name is cut to its last segment');

    const first = urlsOf(await request(bob, 'one.bin', MAX));
    t.equal((await put(first.put, Buffer.alloc(MAX))).status, 201);
    const quota = await request(bob, 'two.bin', 600);
    t.equal(errorCondition(quota), 'resource-constraint', 'past the quota');
    t.ok(urlsOf(await request(bob, 'three.bin', 500)), 'within the quota still works');
  });

  t.test('refused PUTs: wrong token, size, type; body past the limit', async (t) => {
    const { put: putUrl } = urlsOf(await request(alice, 'file.txt', 10, 'text/plain'));
    const url = new URL(putUrl);
    const token = url.searchParams.get('token')!;

    const tampered = new URL(putUrl);
    tampered.searchParams.set('token', `${token.slice(0, -2)}AA`);
    t.equal((await put(tampered.toString(), '0123456789', 'text/plain')).status, 403, 'a bad signature');
    const otherSlot = urlsOf(await request(alice, 'file.txt', 10, 'text/plain'));
    const swapped = new URL(otherSlot.put);
    swapped.searchParams.set('token', token);
    t.equal((await put(swapped.toString(), '0123456789', 'text/plain')).status, 403, "another slot's token");
    const renamed = new URL(putUrl.replace('/file.txt', '/other.txt'));
    t.equal((await put(renamed.toString(), '0123456789', 'text/plain')).status, 403, 'another file name');
    t.equal((await fetch(putUrl.split('?')[0]!, { method: 'PUT', body: '0123456789', headers: { 'Content-Type': 'text/plain' } })).status, 403, 'no token');

    t.equal((await put(putUrl, '01234', 'text/plain')).status, 400, 'fewer bytes than the slot');
    t.equal((await put(putUrl, '0123456789', 'text/html')).status, 400, 'another content type');
    t.equal((await put(putUrl, Buffer.alloc(MAX + 1), 'text/plain')).status, 413, 'a body past max_file_size: 413');
    t.equal((await put(putUrl, '0123456789', 'text/plain')).status, 201, 'the right one still goes in');
  });

  t.test('an expired file is gone', async (t) => {
    const { put: putUrl, get: getUrl } = urlsOf(await request(alice, 'old.bin', 4));
    t.equal((await put(putUrl, 'abcd')).status, 201);
    const id = new URL(getUrl).pathname.split('/')[3]!;
    const metaFile = path.join(ts.dataDir, 'http_upload', SERVICE, id, 'meta.json');
    const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as { created: number };
    writeFileSync(metaFile, JSON.stringify({ ...meta, created: Date.now() - 8 * 86_400_000 }));
    t.equal((await fetch(getUrl)).status, 404, 'older than expire_after: 404');
    t.notOk(existsSync(path.dirname(metaFile)), 'and deleted from the disk');
  });

  t.test("a deleted account's files are deleted", async (t) => {
    await ts.addUser('carol');
    const carol = await connect(ts, 'carol');
    const { put: putUrl, get: getUrl } = urlsOf(await request(carol, 'mine.bin', 4));
    t.equal((await put(putUrl, 'abcd')).status, 201);
    await carol.stop();
    await ts.server.core.accounts.delete(parseJid('carol@localhost'));
    const dir = path.join(ts.dataDir, 'http_upload', SERVICE, new URL(getUrl).pathname.split('/')[3]!);
    t.notOk(existsSync(dir), 'the file is gone from the disk');
    t.equal((await fetch(getUrl)).status, 404);
  });
}

t.test('HTTP File Upload (SQLite)', (t) => scenario(t, {}));
t.test('HTTP File Upload (PostgreSQL)', (t) => onPostgres(t, 'starling_upload_it', (storage) => scenario(t, storage)));

t.test('an HTTP port in use is a one-line operator error', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  await t.rejects(startTestServer(t, { modules_enabled: ['sasl', 'http_upload'], http: { interfaces: ['127.0.0.1'], port, https_interfaces: ['127.0.0.1'], https_port: 0 } }), {
    name: 'OperatorError',
    message: `http listener 127.0.0.1:${port}: address already in use (another server on that port?)`,
  });
});

t.test('nothing served over HTTP: no HTTP port open', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl'], http: { websocket: false, bosh: false, web_client: false }, metrics: { enabled: false } });
  t.same(ts.server.httpAddresses, [], 'nothing listens');
});
