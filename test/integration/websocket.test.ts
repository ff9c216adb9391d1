// XMPP over WebSocket (RFC 7395) over real sockets: @xmpp/client's websocket transport logs in
// with SCRAM and talks with a TCP client; a raw `ws` client resumes with stream management,
// and gets the errors for restricted XML, framing and a missing subprotocol.
import t from 'tap';
import WebSocket from 'ws';
import { connect, startClient, xml, xmppClient } from '../helpers/clients.js';
import { DOMAIN, PASSWORD, nextHook, startTestServer } from '../helpers/harness.js';
import { RawWebSocket, wsAuthenticate, wsLogin } from '../helpers/websocket.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
// @xmpp/websocket uses the WHATWG WebSocket, which Node 20 does not have globally.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

const SM = 'urn:xmpp:sm:3';

t.test('XMPP over WebSocket', async (t) => {
  const ts = await startTestServer(t);
  await ts.addUser('alice');
  await ts.addUser('bob');
  const https = ts.server.httpAddresses.find((a) => a.secure)!;
  const plain = ts.server.httpAddresses.find((a) => !a.secure)!;
  const wss = `wss://127.0.0.1:${https.port}/xmpp-websocket`;
  const ws = `ws://127.0.0.1:${plain.port}/xmpp-websocket`;

  t.test('@xmpp/client over WebSocket logs in with SCRAM and talks with a TCP client', async (t) => {
    const xmpp = xmppClient({ service: wss, domain: DOMAIN, username: 'alice', password: PASSWORD, resource: 'web' });
    let mechanism = '';
    xmpp.on('send', (el) => {
      if ((el.name === 'auth' || el.name === 'authenticate') && el.attrs.mechanism) mechanism = el.attrs.mechanism;
    });
    const web = await startClient(xmpp);
    t.teardown(() => web.stop());
    t.match(mechanism, /^SCRAM-/, `authenticated with ${mechanism}`);
    t.match(web.jid, /^alice@localhost\/web/);
    const tcp = await connect(ts, 'bob', { resource: 'desk' });
    t.teardown(() => tcp.stop());

    await web.send(xml('message', { to: tcp.jid, type: 'chat' }, xml('body', {}, 'from the browser')));
    const got = await tcp.next((el) => el.name === 'message' && el.getChildText('body') === 'from the browser');
    t.equal(got.attrs.from, web.jid);
    await tcp.send(xml('message', { to: web.jid, type: 'chat' }, xml('body', {}, 'from the desk')));
    const reply = await web.next((el) => el.name === 'message' && el.getChildText('body') === 'from the desk');
    t.equal(reply.attrs.from, tcp.jid);
  });

  t.test('stream management: a cut WebSocket resumes on a new one', async (t) => {
    const phone = await RawWebSocket.connect(wss);
    await wsLogin(phone, 'bob', 'phone');
    phone.write(`<enable xmlns='${SM}' resume='true'/>`);
    const enabled = await phone.element('enabled');
    const previd = enabled.attrs.id!;
    const sender = await connect(ts, 'alice', { resource: 'sender' });
    t.teardown(() => sender.stop());

    await sender.send(xml('message', { to: 'bob@localhost/phone', type: 'chat' }, xml('body', {}, 'm1')));
    await phone.until(() => phone.elements.find((e) => e.name === 'message'));
    phone.write(`<a xmlns='${SM}' h='1'/>`);
    phone.write(`<r xmlns='${SM}'/>`);
    await phone.element('a');
    const interrupted = nextHook(ts, 'session/interrupted');
    phone.cut();
    await interrupted;
    await sender.send(xml('message', { to: 'bob@localhost/phone', type: 'chat' }, xml('body', {}, 'm2')));
    await sender.roundTrip();

    const again = await RawWebSocket.connect(wss);
    t.teardown(() => again.cut());
    await wsAuthenticate(again, 'bob');
    again.write(`<resume xmlns='${SM}' previd='${previd}' h='1'/>`);
    const resumed = await again.element('resumed');
    t.equal(resumed.attrs.previd, previd);
    const m2 = await again.until(() => again.elements.find((e) => e.name === 'message'));
    t.equal(m2.getChildText('body'), 'm2', 'the message sent while cut arrives once resumed');
    t.ok(
      again.received.some((m) => m.startsWith("<message xmlns='jabber:client'")),
      'stanzas carry their namespace in each message',
    );
  });

  t.test('a DOCTYPE gets restricted-xml', async (t) => {
    const s = await RawWebSocket.connect(wss);
    s.open();
    await s.element('stream:features');
    s.write('<!DOCTYPE message [<!ENTITY x "y">]>');
    t.equal(await s.streamError(), 'restricted-xml');
    await s.element('close');
    await s.until(() => s.closed);
  });

  t.test('a comment before <open/> gets restricted-xml too, after an <open/> of ours', async (t) => {
    const s = await RawWebSocket.connect(wss);
    s.write('<!-- hello -->');
    await s.element('open');
    t.equal(await s.streamError(), 'restricted-xml');
  });

  t.test('one message, one complete element', async (t) => {
    const two = await RawWebSocket.connect(wss);
    two.open();
    await two.element('stream:features');
    two.write("<iq xmlns='jabber:client' type='get' id='1'/><iq xmlns='jabber:client' type='get' id='2'/>");
    t.equal(await two.streamError(), 'not-well-formed', 'two elements');
    const half = await RawWebSocket.connect(wss);
    half.open();
    await half.element('stream:features');
    half.write("<iq xmlns='jabber:client' type='get' id='1'>");
    t.equal(await half.streamError(), 'not-well-formed', 'half an element');
  });

  t.test('the xmpp subprotocol is required', async (t) => {
    t.equal(await RawWebSocket.refusal(wss, []), 400, 'no subprotocol');
    t.equal(await RawWebSocket.refusal(wss, ['chat']), 400, 'another subprotocol');
  });

  t.test('origins: the served hosts and none are let in, others refused', async (t) => {
    t.equal(await RawWebSocket.refusal(wss, ['xmpp'], { Origin: 'https://evil.example' }), 403);
    const s = await RawWebSocket.connect(wss, ['xmpp'], { Origin: 'https://localhost' });
    t.equal(s.ws.protocol, 'xmpp');
    s.cut();
  });

  t.test('plain ws: no STARTTLS; authentication for a client on this machine, or when a trusted proxy says HTTPS', async (t) => {
    const local = await RawWebSocket.connect(ws);
    local.open();
    const direct = await local.element('stream:features');
    t.notOk(direct.getChild('starttls'), 'no STARTTLS over WebSocket');
    t.ok(direct.getChild('mechanisms'), 'SASL offered to a client on loopback that is not proxied (http://localhost:5280/chat)');
    local.cut();
    const s = await RawWebSocket.connect(ws, ['xmpp'], { 'X-Forwarded-For': '192.0.2.7' });
    s.open();
    const features = await s.element('stream:features');
    t.notOk(features.getChild('mechanisms'), 'no SASL for a client a proxy forwards over plain HTTP');
    s.cut();
    const proxied = await RawWebSocket.connect(ws, ['xmpp'], { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '192.0.2.7' });
    proxied.open();
    const offered = await proxied.element('stream:features');
    t.ok(offered.getChild('mechanisms'), 'SASL offered behind a proxy that terminated TLS');
    proxied.cut();
  });

  t.test('the per-IP cap on unauthenticated connections holds for WebSocket (behind a proxy: the forwarded address)', async (t) => {
    const cap = ts.server.core.config.c2s.max_unauthenticated_per_ip;
    const from = { 'X-Forwarded-For': '192.0.2.99' };
    const open: RawWebSocket[] = [];
    t.teardown(() => open.forEach((s) => s.cut()));
    for (let i = 0; i < cap; i++) open.push(await RawWebSocket.connect(ws, ['xmpp'], from));
    const over = await RawWebSocket.connect(ws, ['xmpp'], from);
    await over.until(() => over.closed);
    t.equal(over.closeCode, 1013, 'one more is closed: try again later');
    const other = await RawWebSocket.connect(ws, ['xmpp'], { 'X-Forwarded-For': '192.0.2.100' });
    other.open();
    await other.element('stream:features');
    t.pass('another address is let in');
    other.cut();
  });

  t.test('a message larger than the stanza limit closes the WebSocket', async (t) => {
    const s = await RawWebSocket.connect(wss);
    s.open();
    await s.element('stream:features');
    s.write(`<message xmlns='jabber:client'><body>${'x'.repeat(ts.server.core.config.c2s.max_stanza_size + 2048)}</body></message>`);
    await s.until(() => s.closed);
    t.equal(s.closeCode, 1009, 'message too big');
  });

  t.test('the closing handshake', async (t) => {
    const s = await RawWebSocket.connect(wss);
    await wsLogin(s, 'alice', 'closing');
    s.write("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    await s.element('close');
    await s.until(() => s.closed);
    t.equal(s.closeCode, 1000);
  });
});
