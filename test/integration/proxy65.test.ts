// XEP-0065 SOCKS5 Bytestreams proxy over real sockets: discovery, the streamhost query, two
// SOCKS5 connections (node sockets speaking the RFC 1928 bytes) paired and activated by the
// initiator, 1 MiB relayed intact, the refused activations (not the initiator, unknown hash,
// one side only, twice), the refused SOCKS5 requests, the activation and idle timeouts, the
// per-IP cap, the rate and size limits, max_transfers, other servers' users (refused, or let in
// with allow_remote), and one listener shared by two hosts.
import { createHash, randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { connect, errorCondition, PASSWORD, startClient, xml, xmppClient, type TestClient } from '../helpers/clients.js';
import { makeJid } from '../../src/jid.js';
import { DOMAIN, startTestServer, type TestServer } from '../helpers/harness.js';
import { closedPort } from '../helpers/cli.js';
import { Socks5Client } from '../helpers/socks5.js';

const NS = 'http://jabber.org/protocol/bytestreams';
const PROXY = `proxy.${DOMAIN}`;
const OTHER = 'other.localhost';
const MODULES = ['sasl', 'ping', 'disco', 'proxy65'];
const RATE = 500_000;
const MAX_BYTES = 400_000;

async function iq(client: TestClient, type: 'get' | 'set', payload: Element, to = PROXY): Promise<Element> {
  const id = `q${Math.random().toString(36).slice(2)}`;
  await client.send(xml('iq', { type, id, to }, payload));
  return client.next((el) => el.name === 'iq' && el.attrs.id === id);
}

const hashOf = (sid: string, initiator: string, target: string) =>
  createHash('sha1')
    .update(sid + initiator + target)
    .digest('hex');

async function streamhost(client: TestClient, proxy = PROXY): Promise<{ jid: string; host: string; port: number }> {
  const reply = await iq(client, 'get', xml('query', { xmlns: NS }), proxy);
  const host = reply.getChild('query', NS)?.getChild('streamhost');
  if (!host) throw new Error(`no streamhost: ${reply.toString()}`);
  return { jid: host.attrs.jid as string, host: host.attrs.host as string, port: Number(host.attrs.port) };
}

const activate = (client: TestClient, sid: string, target: string, proxy = PROXY) => iq(client, 'set', xml('query', { xmlns: NS, sid }, xml('activate', {}, target)), proxy);

async function users(t: Test, ts: TestServer): Promise<{ alice: TestClient; bob: TestClient }> {
  for (const u of ['alice', 'bob']) await ts.addUser(u);
  const alice = await connect(ts, 'alice');
  const bob = await connect(ts, 'bob');
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
  return { alice, bob };
}

t.test('the proxy with its defaults', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { proxy65: { interfaces: ['127.0.0.1'], port: 0 } } });
  const { alice, bob } = await users(t, ts);
  const { port } = await streamhost(alice);

  t.test('discovery', async (t) => {
    const items = await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }), DOMAIN);
    t.ok(
      items
        .getChild('query')!
        .getChildren('item')
        .some((i) => i.attrs.jid === PROXY),
      'the host lists the proxy',
    );
    const info = (await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }))).getChild('query')!;
    t.ok(info.getChildren('identity').some((i) => i.attrs.category === 'proxy' && i.attrs.type === 'bytestreams'));
    t.ok(info.getChildren('feature').some((f) => f.attrs.var === NS));
  });

  t.test('the streamhost query gives the address', async (t) => {
    const host = await streamhost(bob);
    t.equal(host.jid, PROXY);
    t.equal(host.host, PROXY, 'the public host is the proxy domain by default');
    t.ok(host.port > 0, 'the port the listener got');
  });

  t.test('paired, activated by the initiator, 1 MiB relayed intact', async (t) => {
    const sid = 'sid-1';
    const hash = hashOf(sid, alice.jid, bob.jid);
    const target = await Socks5Client.connect(port, hash);
    t.teardown(() => target.socket.destroy());
    t.equal(errorCondition(await activate(alice, sid, bob.jid)), 'not-allowed', 'only the target is connected yet');
    const initiator = await Socks5Client.connect(port, hash);
    t.teardown(() => initiator.socket.destroy());
    // Bytes sent before activation are kept for after it (XEP-0065 §9.1).
    initiator.write(Buffer.from('early'));

    t.equal(errorCondition(await activate(bob, sid, alice.jid)), 'item-not-found', 'the target cannot activate it');
    t.equal(errorCondition(await activate(alice, sid, 'carol@localhost/x')), 'item-not-found', 'nor the initiator for another target');
    const done = await activate(alice, sid, bob.jid);
    t.equal(done.attrs.type, 'result', 'the initiator activates it');
    t.equal(errorCondition(await activate(alice, sid, bob.jid)), 'not-allowed', 'once');

    const file = randomBytes(1 << 20);
    const received = target.read(5 + file.length);
    initiator.write(file);
    const bytes = await received;
    t.equal(bytes.subarray(0, 5).toString(), 'early');
    t.ok(bytes.subarray(5).equals(file), '1 MiB, the same bytes');

    target.write(Buffer.from('thanks'));
    t.equal((await initiator.read(6)).toString(), 'thanks', 'and the other way');
    initiator.socket.end();
    await target.closed;
    t.pass('the end of one side ends the other');
  });

  t.test('a party that leaves before the activation is noticed', async (t) => {
    const hash = hashOf('left', alice.jid, bob.jid);
    const target = await Socks5Client.connect(port, hash);
    target.socket.end();
    await target.closed;
    const initiator = await Socks5Client.connect(port, hash);
    t.teardown(() => initiator.socket.destroy());
    t.equal(errorCondition(await activate(alice, 'left', bob.jid)), 'not-allowed', 'only the initiator is still there');
  });

  t.test('activation of an unknown bytestream, or without a target', async (t) => {
    t.equal(errorCondition(await activate(alice, 'never-connected', bob.jid)), 'item-not-found');
    t.equal(errorCondition(await iq(alice, 'set', xml('query', { xmlns: NS, sid: 'x' }))), 'bad-request');
  });

  t.test('SOCKS5 requests the proxy does not serve', async (t) => {
    const auth = await Socks5Client.open(port);
    t.equal(await auth.greet([2]), 0xff, 'username/password only: no acceptable method');
    await auth.closed;

    const ipv4 = await Socks5Client.open(port);
    await ipv4.greet();
    ipv4.write([5, 1, 0, 1, 127, 0, 0, 1, 0, 80]);
    t.equal((await ipv4.read(2))[1], 8, 'an IPv4 address: address type not supported');
    await ipv4.closed;

    const bind = await Socks5Client.open(port);
    await bind.greet();
    t.equal((await bind.request(hashOf('b', alice.jid, bob.jid), 2)).code, 7, 'BIND: command not supported');
    await bind.closed;

    const name = await Socks5Client.open(port);
    await name.greet();
    t.equal((await name.request('example.org')).code, 2, 'a name that is no hash: not allowed');
    await name.closed;

    const hash = hashOf('three', alice.jid, bob.jid);
    const one = await Socks5Client.connect(port, hash);
    const two = await Socks5Client.connect(port, hash);
    const three = await Socks5Client.open(port);
    await three.greet();
    t.equal((await three.request(hash)).code, 2, 'a third connection for one bytestream: not allowed');
    await three.closed;
    one.socket.destroy();
    two.socket.destroy();
  });
});

t.test('limits: activation and idle timeouts, connections per IP, rate and size, other servers', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    hosts: { [DOMAIN]: {}, [OTHER]: { modules_enabled: ['sasl', 'ping', 'disco'] } },
    modules: { proxy65: { interfaces: ['127.0.0.1'], port: 0, activation_timeout: 1, idle_timeout: 2, max_connections_per_ip: 3, max_rate: RATE, max_bytes: MAX_BYTES } },
  });
  const { alice, bob } = await users(t, ts);
  const { port } = await streamhost(alice);

  t.test('a connection never activated is closed', async (t) => {
    const lonely = await Socks5Client.connect(port, hashOf('lonely', alice.jid, bob.jid));
    await lonely.closed;
    t.pass('closed by the proxy');
  });

  /** A bytestream from alice to bob, activated; resolves with both ends. */
  async function activated(sid: string): Promise<{ target: Socks5Client; initiator: Socks5Client }> {
    const hash = hashOf(sid, alice.jid, bob.jid);
    const target = await Socks5Client.connect(port, hash);
    const initiator = await Socks5Client.connect(port, hash);
    const reply = await activate(alice, sid, bob.jid);
    if (reply.attrs.type !== 'result') throw new Error(`not activated: ${reply.toString()}`);
    return { target, initiator };
  }

  t.test('an idle relay is closed', async (t) => {
    const { target, initiator } = await activated('idle');
    initiator.write(Buffer.from('ping'));
    t.equal((await target.read(4)).toString(), 'ping', 'relaying');
    const lastByte = Date.now();
    await Promise.all([target.closed, initiator.closed]);
    // Not the activation deadline (1 s from the connection): the idle timeout, 2 s after the last byte.
    t.ok(Date.now() - lastByte >= 1500, `both sides closed once nothing moved for the idle timeout (${Date.now() - lastByte} ms)`);
  });

  t.test('the rate limit slows a transfer down, the size limit ends it', async (t) => {
    const slow = await activated('rate');
    const bytes = randomBytes(MAX_BYTES);
    const started = Date.now();
    const received = slow.target.read(bytes.length);
    slow.initiator.write(bytes);
    t.ok((await received).equals(bytes), 'up to the size limit, intact');
    const ms = Date.now() - started;
    t.ok(ms >= 500, `at most ${RATE} bytes/s: ${bytes.length} bytes took ${ms} ms`);
    slow.initiator.write(Buffer.from('!'));
    await Promise.all([slow.target.closed, slow.initiator.closed]);
    t.pass('one byte past the size limit closes both sides');
  });

  t.test('connections per IP', async (t) => {
    const open = await Promise.all([0, 1, 2].map((i) => Socks5Client.connect(port, hashOf(`cap${i}`, alice.jid, bob.jid))));
    const fourth = await Socks5Client.open(port);
    await fourth.closed;
    t.equal(fourth.ended, true, 'the fourth is closed at once');
    open[0]!.socket.destroy();
    await open[0]!.closed;
    // The server counts the close when it sees it; a refused attempt is simply tried again.
    let again: Socks5Client | undefined;
    while (!again) again = await Socks5Client.connect(port, hashOf('cap3', alice.jid, bob.jid)).catch(() => undefined);
    t.pass('a slot freed is taken again');
    for (const c of [...open, again]) c.socket.destroy();
  });

  t.test("other servers' users may not use it", async (t) => {
    await ts.server.core.accounts.create(makeJid('carol', OTHER), PASSWORD);
    const carol = await startClient(xmppClient({ service: `xmpp://127.0.0.1:${ts.port}`, domain: OTHER, username: 'carol', password: PASSWORD }));
    t.teardown(() => carol.stop());
    t.equal(errorCondition(await iq(carol, 'get', xml('query', { xmlns: NS }))), 'forbidden');
  });
});

t.test('two hosts share one listener', async (t) => {
  const port = await closedPort();
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    hosts: { [DOMAIN]: {}, [OTHER]: {} },
    modules: { proxy65: { interfaces: ['127.0.0.1'], port } },
  });
  const { alice, bob } = await users(t, ts);
  await ts.server.core.accounts.create(makeJid('carol', OTHER), PASSWORD);
  const carol = await startClient(xmppClient({ service: `xmpp://127.0.0.1:${ts.port}`, domain: OTHER, username: 'carol', password: PASSWORD }));
  t.teardown(() => carol.stop());
  t.equal((await streamhost(alice)).port, port);
  t.equal((await streamhost(carol, `proxy.${OTHER}`)).port, port, 'the other host reports the same port');
  t.equal(errorCondition(await iq(alice, 'get', xml('query', { xmlns: NS }), `proxy.${OTHER}`)), 'forbidden', "the other host's proxy is for its own users");

  // A bytestream from carol to bob, through the other host's proxy and the shared listener.
  const hash = hashOf('shared', carol.jid, bob.jid);
  const target = await Socks5Client.connect(port, hash);
  const initiator = await Socks5Client.connect(port, hash);
  t.equal((await activate(carol, 'shared', bob.jid, `proxy.${OTHER}`)).attrs.type, 'result');
  initiator.write(Buffer.from('hello'));
  t.equal((await target.read(5)).toString(), 'hello');
  target.socket.destroy();
  initiator.socket.destroy();
});

t.test("allow_remote lets other servers' users in; max_transfers caps the relays", async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    hosts: { [DOMAIN]: {}, [OTHER]: { modules_enabled: ['sasl', 'ping', 'disco'] } },
    modules: { proxy65: { interfaces: ['127.0.0.1'], port: 0, allow_remote: true, max_transfers: 1 } },
  });
  const { alice, bob } = await users(t, ts);
  await ts.server.core.accounts.create(makeJid('carol', OTHER), PASSWORD);
  const carol = await startClient(xmppClient({ service: `xmpp://127.0.0.1:${ts.port}`, domain: OTHER, username: 'carol', password: PASSWORD }));
  t.teardown(() => carol.stop());
  const { port } = await streamhost(carol);
  t.ok(port > 0, 'a user of another server gets the address');

  const connected = async (initiator: TestClient, sid: string) => {
    const hash = hashOf(sid, initiator.jid, bob.jid);
    return [await Socks5Client.connect(port, hash), await Socks5Client.connect(port, hash)];
  };
  const first = await connected(carol, 'one');
  const second = await connected(alice, 'two');
  t.equal((await activate(carol, 'one', bob.jid)).attrs.type, 'result', 'and may activate a bytestream');
  t.equal(errorCondition(await activate(alice, 'two', bob.jid)), 'resource-constraint', 'a second relay past max_transfers');
  for (const c of first) c.socket.destroy();
  await Promise.all(first.map((c) => c.closed));
  // The relay's end is counted once the proxy has seen both connections close.
  let reply = await activate(alice, 'two', bob.jid);
  while (errorCondition(reply) === 'resource-constraint') reply = await activate(alice, 'two', bob.jid);
  t.equal(reply.attrs.type, 'result', 'the place freed is taken');
  for (const c of second) c.socket.destroy();
});
