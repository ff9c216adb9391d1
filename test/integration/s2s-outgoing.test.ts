// Outgoing federation when things go wrong, and finding servers: a domain that cannot be
// reached and one that never answers come back to the sender as errors within connect_timeout;
// SRV records (_xmpps-server and _xmpp-server, XEP-0368) from a small DNS server run by the
// test are followed in order, with direct TLS for xmpps targets; no SRV record means the
// domain itself on 5269, and a "." target means no service.
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { parseConfigText } from '../../src/config/load.js';
import { orderSrv } from '../../src/s2s/resolve.js';
import { parseRouteTarget } from '../../src/s2s/route-target.js';
import { connectTo, errorCondition, startFederated, xml } from './s2s-helpers.js';

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

t.test('a message to an unreachable domain comes back as an error, within the timeout', async (t) => {
  const a = await startFederated(t, 'a.localhost', { connect_timeout: 1.5 });
  await a.user('alice');
  const alice = await connectTo(a, 'alice', 'desk');
  t.teardown(() => alice.stop());

  t.test('connection refused: remote-server-not-found at once', async (t) => {
    a.server.s2s.addRoute('refused.localhost', `127.0.0.1:${await closedPort()}`);
    const started = Date.now();
    await alice.send(xml('message', { to: 'someone@refused.localhost', id: 'r1', type: 'chat' }, xml('body', {}, 'anyone?')));
    const back = await alice.next((el) => el.attrs.id === 'r1');
    const elapsed = Date.now() - started;
    t.equal(back.attrs.type, 'error');
    t.equal(errorCondition(back), 'remote-server-not-found');
    t.equal(back.attrs.from, 'someone@refused.localhost', 'from the address it was sent to');
    t.ok(elapsed < 1500, `back in ${elapsed} ms, before the timeout`);
    t.comment(`refused: error after ${elapsed} ms`);
  });

  t.test('without a route and with DNS lookups off (dns_lookup = false): remote-server-not-found', async (t) => {
    await alice.send(xml('message', { to: 'someone@example.net', id: 'n1', type: 'chat' }, xml('body', {}, 'far')));
    const back = await alice.next((el) => el.attrs.id === 'n1');
    t.equal(errorCondition(back), 'remote-server-not-found');
    t.match(back.getChild('error')!.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas'), /DNS lookups are off/);
  });

  t.test('a server that accepts and never answers: remote-server-timeout after connect_timeout', async (t) => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => (sockets.add(s), s.on('error', () => {})));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.teardown(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    a.server.s2s.addRoute('silent.localhost', `127.0.0.1:${(silent.address() as net.AddressInfo).port}`);
    const started = Date.now();
    await alice.send(xml('message', { to: 'x@silent.localhost', id: 's1', type: 'chat' }, xml('body', {}, 'one')));
    await alice.send(xml('message', { to: 'x@silent.localhost', id: 's2', type: 'chat' }, xml('body', {}, 'two')));
    await alice.send(xml('iq', { to: 'silent.localhost', id: 's3', type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await alice.send(xml('presence', { to: 'x@silent.localhost', type: 'unavailable' }));
    const errors: Element[] = [];
    for (const id of ['s1', 's2', 's3']) errors.push(await alice.next((el) => el.attrs.id === id, 10_000));
    const elapsed = Date.now() - started;
    t.same(
      errors.map((e) => [e.name, e.attrs.type, errorCondition(e)]),
      [
        ['message', 'error', 'remote-server-timeout'],
        ['message', 'error', 'remote-server-timeout'],
        ['iq', 'error', 'remote-server-timeout'],
      ],
      'every queued stanza comes back (presence unavailable is not answered)',
    );
    t.ok(elapsed >= 1400 && elapsed < 5000, `after the 1.5 s connect_timeout (${elapsed} ms)`);
    t.comment(`silent server: errors after ${elapsed} ms (connect_timeout 1.5 s)`);
    t.same(
      a.server.s2s.connections().filter((c) => c.remote === 'silent.localhost'),
      [],
      'and the failed stream is gone',
    );
  });
});

// --- SRV records -----------------------------------------------------------------------------

type Srv = { priority: number; weight: number; port: number; target: string };

/** A DNS server on UDP loopback answering SRV questions from `zone` (NXDOMAIN for the rest). */
async function fakeDns(zone: Map<string, Srv[]>): Promise<{ port: number; close(): void }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (query, peer) => {
    let offset = 12;
    const labels: string[] = [];
    while (query[offset]! !== 0) {
      const length = query[offset]!;
      labels.push(query.subarray(offset + 1, offset + 1 + length).toString('latin1'));
      offset += length + 1;
    }
    const qtype = query.readUInt16BE(offset + 1);
    const question = query.subarray(12, offset + 5);
    const records = qtype === 33 ? zone.get(labels.join('.').toLowerCase()) : undefined;
    const header = Buffer.alloc(12);
    header.writeUInt16BE(query.readUInt16BE(0), 0);
    header.writeUInt16BE(records ? 0x8180 : 0x8183, 2); // response, RD+RA; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records?.length ?? 0, 6);
    const answers = (records ?? []).map((r) => {
      const target = Buffer.concat([
        ...r.target
          .split('.')
          .filter(Boolean)
          .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
        Buffer.from([0]),
      ]);
      const rr = Buffer.alloc(12 + 6);
      rr.writeUInt16BE(0xc00c, 0); // the name of the question
      rr.writeUInt16BE(33, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(6 + target.length, 10);
      rr.writeUInt16BE(r.priority, 12);
      rr.writeUInt16BE(r.weight, 14);
      rr.writeUInt16BE(r.port, 16);
      return Buffer.concat([rr, target]);
    });
    socket.send(Buffer.concat([header, question, ...answers]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, close: () => socket.close() };
}

t.test('SRV records: _xmpps-server and _xmpp-server merged by priority, tried in order', async (t) => {
  const zone = new Map<string, Srv[]>();
  const server = await fakeDns(zone);
  const previous = dns.getServers();
  dns.setServers([`127.0.0.1:${server.port}`]);
  t.teardown(() => {
    dns.setServers(previous);
    server.close();
  });

  const b = await startFederated(t, 'b.localhost', {
    listeners: [
      { interfaces: ['127.0.0.1'], port: 0, direct_tls: false },
      { interfaces: ['127.0.0.1'], port: 0, direct_tls: true },
    ],
  });
  const a = await startFederated(t, 'a.localhost', { connect_timeout: 3, dns_lookup: true });
  const directPort = b.server.s2sAddresses.find((x) => x.directTls)!.port;
  b.server.s2s.addRoute('a.localhost', `127.0.0.1:${a.s2sPort}`); // b finds a by route; a uses DNS
  await a.user('alice');
  await b.user('bob');
  const alice = await connectTo(a, 'alice', 'desk');
  const bob = await connectTo(b, 'bob', 'phone');
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));

  t.test('the first target refuses, the next (STARTTLS) works', async (t) => {
    zone.set('_xmpps-server._tcp.b.localhost', [{ priority: 0, weight: 0, port: await closedPort(), target: 'localhost.' }]);
    zone.set('_xmpp-server._tcp.b.localhost', [{ priority: 10, weight: 0, port: b.s2sPort, target: 'localhost.' }]);
    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'via SRV')));
    const m = await bob.next((el) => el.name === 'message' && el.getChildText('body') === 'via SRV');
    t.equal(m.attrs.from, alice.jid);
    t.match(
      a.server.s2s.connections().filter((c) => c.direction === 'out'),
      [{ remote: 'b.localhost', directTls: false, secure: true }],
      'connected with STARTTLS to the second target',
    );
  });

  t.test('an _xmpps-server target first: direct TLS', async (t) => {
    // A domain of its own, so a new stream is looked up: c.localhost is served by b too.
    const c = await startFederated(t, 'c.localhost', {
      listeners: [
        { interfaces: ['127.0.0.1'], port: 0, direct_tls: false },
        { interfaces: ['127.0.0.1'], port: 0, direct_tls: true },
      ],
    });
    c.server.s2s.addRoute('a.localhost', `127.0.0.1:${a.s2sPort}`);
    await c.user('carol');
    const carol = await connectTo(c, 'carol', 'tab');
    t.teardown(() => carol.stop());
    const cDirect = c.server.s2sAddresses.find((x) => x.directTls)!.port;
    zone.set('_xmpps-server._tcp.c.localhost', [{ priority: 5, weight: 10, port: cDirect, target: 'localhost.' }]);
    zone.set('_xmpp-server._tcp.c.localhost', [{ priority: 20, weight: 0, port: c.s2sPort, target: 'localhost.' }]);
    await alice.send(xml('message', { to: carol.jid, type: 'chat' }, xml('body', {}, 'direct')));
    await carol.next((el) => el.name === 'message' && el.getChildText('body') === 'direct');
    t.match(
      a.server.s2s.connections().filter((x) => x.direction === 'out' && x.remote === 'c.localhost'),
      [{ directTls: true, secure: true }],
      'direct TLS to the xmpps target',
    );
    t.equal(directPort > 0, true);
  });

  t.test('a lone "." target: no service, no fallback', async (t) => {
    zone.set('_xmpp-server._tcp.nothing.localhost', [{ priority: 0, weight: 0, port: 0, target: '.' }]);
    await alice.send(xml('message', { to: 'x@nothing.localhost', id: 'dot' }, xml('body', {}, '?')));
    const back = await alice.next((el) => el.attrs.id === 'dot');
    t.equal(errorCondition(back), 'remote-server-not-found');
    t.match(back.getChild('error')!.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas'), /no XMPP server service/);
  });

  t.test('no SRV record: the domain itself on port 5269', async (t) => {
    await alice.send(xml('message', { to: 'x@nosrv.localhost', id: 'nosrv' }, xml('body', {}, '?')));
    const back = await alice.next((el) => el.attrs.id === 'nosrv');
    t.equal(errorCondition(back), 'remote-server-not-found');
    t.match(back.getChild('error')!.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas'), /nosrv\.localhost:5269/, 'it tried nosrv.localhost:5269');
  });
});

t.test('RFC 2782 order: priority first, then weighted choice', async (t) => {
  const records = [
    { name: 'c', port: 3, priority: 10, weight: 0 },
    { name: 'a', port: 1, priority: 0, weight: 10 },
    { name: 'b', port: 2, priority: 0, weight: 90 },
  ];
  t.same(
    orderSrv(records, () => 0.5).map((r) => r.name),
    ['b', 'a', 'c'],
    'a draw in the heavy part picks b first',
  );
  t.same(
    orderSrv(records, () => 0.05).map((r) => r.name),
    ['a', 'b', 'c'],
    'a draw in the light part picks a first',
  );
  t.same(
    orderSrv(records)
      .map((r) => r.name)
      .at(-1),
    'c',
    'the higher priority number always comes last',
  );
});

t.test('static routes in the configuration: forms accepted, mistakes reported with their key', async (t) => {
  t.same(parseRouteTarget('127.0.0.1:15269'), { host: '127.0.0.1', port: 15269, directTls: false });
  t.same(parseRouteTarget('xmpps://xmpp.example.net:5270'), { host: 'xmpp.example.net', port: 5270, directTls: true });
  t.same(parseRouteTarget('[::1]:5269'), { host: '::1', port: 5269, directTls: false });
  for (const bad of ['127.0.0.1', 'host:0', 'host:70000', 'http://host:80', 'a b:1']) t.equal(parseRouteTarget(bad), undefined, `"${bad}" refused`);
  t.throws(() => parseConfigText('[s2s]\nroutes = { "example.net" = "nope" }\n', 'r.toml'), /s2s\.routes\."?example\.net"?: expected "host:port"/);
  t.throws(() => parseConfigText('[s2s]\nroutes = { "not a domain" = "127.0.0.1:5269" }\n', 'r.toml'), /s2s\.routes\."not a domain": "not a domain" is not a valid domain/);
  const ok = parseConfigText('[s2s]\nroutes = { "Example.NET" = "10.0.0.5:5269" }\n', 'r.toml');
  t.same(ok.s2s.routes, { 'Example.NET': '10.0.0.5:5269' }, 'a valid route (the domain is prepared when used)');
});
