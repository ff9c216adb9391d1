// The HTTP server over real sockets: routes, security headers, limits (body, head, connections
// per IP), HTTPS by SNI, and a route removed again.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ConfigSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { Certificates } from '../../src/net/certificates.js';
import { HttpServer, sendStatus } from '../../src/net/http.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

async function start(t: Test, overrides: Record<string, unknown> = {}) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'starling-http-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const certificates = new Certificates(
    [{ domain: 'localhost', certificate: '', key: '' }],
    { dataDir, certificatesDir: '', minVersion: 'TLSv1.2', generateSelfSigned: true },
    silentLogger,
  );
  await certificates.load();
  const options = ConfigSchema.parse({ http: { interfaces: ['127.0.0.1'], port: 0, https_interfaces: ['127.0.0.1'], https_port: 0, ...overrides } }).http;
  const server = new HttpServer(options, certificates, silentLogger);
  t.teardown(() => server.close());
  return server;
}

function urls(server: HttpServer) {
  const plain = server.addresses.find((a) => !a.secure)!;
  const secure = server.addresses.find((a) => a.secure)!;
  return { http: `http://127.0.0.1:${plain.port}`, https: `https://127.0.0.1:${secure.port}`, plainPort: plain.port };
}

/** One raw HTTP/1.1 exchange; resolves with the status line. */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let data = '';
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

t.test('routes, security headers, 404 and 405, HTTPS', async (t) => {
  const server = await start(t);
  const remove = server.route('GET', '/hello/', (_req, res, url) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`hello ${url.pathname.slice('/hello/'.length)}`);
  });
  await server.listen();
  const { http, https } = urls(server);

  for (const base of [http, https]) {
    const res = await fetch(`${base}/hello/world`);
    t.equal(res.status, 200, `${base}: served`);
    t.equal(await res.text(), 'hello world');
    t.equal(res.headers.get('x-content-type-options'), 'nosniff');
    t.match(res.headers.get('content-security-policy'), /default-src 'none'/);
    t.equal(res.headers.get('x-frame-options'), 'DENY');
    t.equal(res.headers.get('referrer-policy'), 'no-referrer');
  }
  const missing = await fetch(`${http}/nothing`);
  t.equal(missing.status, 404);
  t.equal(missing.headers.get('x-content-type-options'), 'nosniff', 'an error has the headers too');
  const wrongMethod = await fetch(`${http}/hello/x`, { method: 'DELETE' });
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.headers.get('allow'), 'GET');

  t.throws(() => server.route('GET', '/hello/', () => {}), /served by/, 'a route taken twice is refused');
  remove();
  t.equal((await fetch(`${http}/hello/world`)).status, 404, 'a removed route is gone');
});

t.test('limits: body per route, head size, connections per IP', async (t) => {
  const server = await start(t, { max_header_size: 2048, max_connections_per_ip: 2, proxies: [] });
  server.route(
    'POST',
    '/small',
    async (req, res) => {
      let n = 0;
      for await (const chunk of req) n += (chunk as Buffer).length;
      sendStatus(res, 200, String(n));
    },
    { maxBody: 10 },
  );
  await server.listen();
  const { http, plainPort } = urls(server);

  t.equal((await fetch(`${http}/small`, { method: 'POST', body: '0123456789' })).status, 200, 'at the limit');
  t.equal((await fetch(`${http}/small`, { method: 'POST', body: '0123456789a' })).status, 413, 'past the limit: 413');
  const chunked = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode('0123456789abcdef'));
      c.close();
    },
  });
  const streamed = await fetch(`${http}/small`, { method: 'POST', body: chunked, duplex: 'half' } as RequestInit).catch(() => undefined);
  t.ok(streamed === undefined || streamed.status === 413, 'a chunked body past the limit is cut off');

  t.match(await raw(plainPort, `GET /small HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`), /^HTTP\/1.1 431/, 'a head past max_header_size: 431');

  const open: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = net.connect(plainPort, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    open.push(s);
  }
  const third = net.connect(plainPort, '127.0.0.1');
  await new Promise((r) => third.once('close', r));
  t.pass('a third connection from the same address is closed');
  for (const s of open) s.destroy();
});

t.test("a reverse proxy's address is not capped", async (t) => {
  const server = await start(t, { max_connections_per_ip: 1 });
  server.route('GET', '/', (_req, res) => sendStatus(res, 200));
  await server.listen();
  const { plainPort } = urls(server);
  const open: net.Socket[] = [];
  t.teardown(() => open.forEach((s) => s.destroy()));
  for (let i = 0; i < 3; i++) {
    const s = net.connect(plainPort, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    open.push(s);
  }
  t.match(await raw(plainPort, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1.1 200/, 'loopback (the default proxies) has no cap');
});
