// BOSH (XEP-0124, XEP-0206) over real HTTP with fetch: a session logs in with SCRAM, restarts,
// binds and talks with a TCP client; requests are taken in rid order, a repeated rid gets its
// response again, one outside the window ends the session; terminate; CORS; restricted XML.
import t, { type Test } from 'tap';
import { connect, xml } from '../helpers/clients.js';
import { PASSWORD, nextHook, startTestServer } from '../helpers/harness.js';
import { RawBosh, XBOSH } from '../helpers/bosh.js';
import { scramLogin } from '../helpers/scram-client.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const SM = 'urn:xmpp:sm:3';

t.test('BOSH', async (t) => {
  // Inactivity at its least, for the resumption test.
  const ts = await startTestServer(t, { http: { bosh_inactivity: 5 } });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const https = ts.server.httpAddresses.find((a) => a.secure)!;
  const url = `https://127.0.0.1:${https.port}/http-bind`;

  /** A BOSH session logged in with SCRAM, restarted and bound. */
  async function login(t: Test, user: string, resource: string): Promise<{ b: RawBosh; jid: string }> {
    const b = new RawBosh(url);
    const created = await b.create();
    t.ok(created.attrs.sid, 'a sid');
    t.equal(created.attrs['xmpp:version'], '1.0');
    const features = await b.element('stream:features');
    t.ok(
      features
        .getChild('mechanisms')
        ?.getChildren('mechanism')
        .some((m) => m.text() === 'SCRAM-SHA-256'),
      'SCRAM offered over HTTPS',
    );
    t.notOk(features.getChild('starttls'), 'no STARTTLS over BOSH');
    const { serverSignatureOk } = await scramLogin(b, { mechanism: 'SCRAM-SHA-256', username: user, password: PASSWORD });
    t.ok(serverSignatureOk, 'SCRAM succeeded');
    b.write('', { 'xmpp:restart': 'true', 'xmlns:xmpp': XBOSH, to: 'localhost' });
    const restarted = await b.element('stream:features');
    t.ok(restarted.getChild('bind'), 'bind offered after the restart');
    b.write("<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + '</resource></bind></iq>');
    const bound = await b.until(() => b.elements.find((e) => e.name === 'iq' && e.attrs.id === 'bind'));
    return { b, jid: bound.getChild('bind')!.getChildText('jid')! };
  }

  t.test('login with SCRAM, bind, messages both ways with a TCP client, terminate', async (t) => {
    const { b, jid } = await login(t, 'alice', 'bosh');
    t.match(jid, /^alice@localhost\/bosh/);
    const tcp = await connect(ts, 'bob', { resource: 'desk' });
    t.teardown(() => tcp.stop());

    b.write(`<message xmlns='jabber:client' to='${tcp.jid}' type='chat'><body>over BOSH</body></message>`);
    const got = await tcp.next((el) => el.name === 'message' && el.getChildText('body') === 'over BOSH');
    t.equal(got.attrs.from, jid);

    b.write(''); // a request held for the server to answer with
    await tcp.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'to BOSH')));
    const reply = await b.until(() => b.elements.find((e) => e.name === 'message'));
    t.equal(reply.getChildText('body'), 'to BOSH');
    t.equal(reply.attrs.from, tcp.jid);

    // Two requests out of order: the later rid waits for the earlier one, the messages go in rid order.
    const first = b.rid++;
    const second = b.rid++;
    const late = b.request(second, {}, `<message xmlns='jabber:client' to='${tcp.jid}' type='chat'><body>second</body></message>`);
    const early = b.request(first, {}, `<message xmlns='jabber:client' to='${tcp.jid}' type='chat'><body>first</body></message>`);
    const m1 = await tcp.next((el) => el.name === 'message' && ['first', 'second'].includes(el.getChildText('body') ?? ''));
    const m2 = await tcp.next((el) => el.name === 'message' && ['first', 'second'].includes(el.getChildText('body') ?? ''));
    t.same([m1.getChildText('body'), m2.getChildText('body')], ['first', 'second'], 'handled in rid order');
    const [lateRes, earlyRes] = await Promise.all([late, early]);
    t.equal(lateRes.status, 200);
    t.equal(earlyRes.status, 200);

    // The same rid again: the same response.
    const again = await b.request(second, {}, '');
    t.equal(again.text, lateRes.text, 'a repeated rid gets its response again');

    // Terminate: the answer says so, and the sid is gone.
    const end = await b.request(b.rid++, { type: 'terminate' }, "<presence xmlns='jabber:client' type='unavailable'/>");
    t.equal(end.body.attrs.type, 'terminate');
    const after = await b.request(b.rid++, {}, '');
    t.equal(after.body.attrs.condition, 'item-not-found', 'the session is gone');
  });

  t.test('stream management: an inactive BOSH session is kept and resumed by a new one', async (t) => {
    const { b, jid } = await login(t, 'bob', 'phone');
    b.write(`<enable xmlns='${SM}' resume='true'/>`);
    const previd = (await b.element('enabled')).attrs.id!;
    const sender = await connect(ts, 'alice', { resource: 'sender' });
    t.teardown(() => sender.stop());
    // No more requests: past the inactivity time the connection counts as dropped.
    await nextHook(ts, 'session/interrupted', (e) => e.session.jid?.toString() === jid);
    await sender.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'while away')));
    await sender.roundTrip();

    const again = new RawBosh(url);
    await again.create();
    await again.element('stream:features');
    await scramLogin(again, { mechanism: 'SCRAM-SHA-256', username: 'bob', password: PASSWORD });
    again.write('', { 'xmpp:restart': 'true', 'xmlns:xmpp': XBOSH, to: 'localhost' });
    await again.element('stream:features');
    again.write(`<resume xmlns='${SM}' previd='${previd}' h='0'/>`);
    t.equal((await again.element('resumed')).attrs.previd, previd);
    const m = await again.until(() => again.elements.find((e) => e.name === 'message'));
    t.equal(m.getChildText('body'), 'while away', 'the message sent while inactive arrives once resumed');
    await again.request(again.rid++, { type: 'terminate' }, '');
  });

  t.test('a session begun over HTTPS is refused over plain HTTP from elsewhere (a proxy forwarding it)', async (t) => {
    const b = new RawBosh(url);
    await b.create();
    const plain = ts.server.httpAddresses.find((a) => !a.secure)!;
    const res = await fetch(`http://127.0.0.1:${plain.port}/http-bind`, {
      method: 'POST',
      headers: { 'X-Forwarded-For': '192.0.2.8' },
      body: b.bodyText(b.rid++, {}, ''),
    });
    t.equal(res.status, 403);
    await b.request(b.rid - 1, { type: 'terminate' }, '');
  });

  t.test("hold='0': a polling client's requests are answered at once", async (t) => {
    const b = new RawBosh(url);
    const created = await b.create(60, { hold: '0' });
    t.equal(created.attrs.hold, '0');
    t.equal(created.attrs.requests, '1');
    const empty = await b.request(b.rid++, {}, ''); // held, it would take the 60 s of 'wait'
    t.equal(empty.body.attrs.type, undefined);
    await b.request(b.rid++, { type: 'terminate' }, '');
  });

  t.test('a rid outside the window ends the session', async (t) => {
    const b = new RawBosh(url);
    await b.create();
    const res = await b.request(b.rid + 10, {}, '');
    t.equal(res.body.attrs.type, 'terminate');
    t.equal(res.body.attrs.condition, 'item-not-found');
    const after = await b.request(b.rid++, {}, '');
    t.equal(after.body.attrs.condition, 'item-not-found');
  });

  t.test('restricted XML and unknown sessions', async (t) => {
    const b = new RawBosh(url);
    const res = await b.post(`<!DOCTYPE body><body xmlns='http://jabber.org/protocol/httpbind' rid='1' to='localhost' wait='5' hold='1'/>`);
    t.equal(res.status, 400);
    t.equal(res.body.attrs.type, 'terminate');
    const unknown = await new RawBosh(url).post(`<body xmlns='http://jabber.org/protocol/httpbind' rid='1' sid='00ff'/>`);
    t.equal(unknown.body.attrs.condition, 'item-not-found');
  });

  t.test('CORS: preflight for the served hosts, other origins refused', async (t) => {
    const pre = await fetch(url, { method: 'OPTIONS', headers: { Origin: 'https://localhost', 'Access-Control-Request-Method': 'POST' } });
    t.equal(pre.status, 204);
    t.equal(pre.headers.get('access-control-allow-origin'), 'https://localhost');
    t.match(pre.headers.get('access-control-allow-methods'), /POST/);
    t.notOk(pre.headers.get('set-cookie'), 'no cookies');
    const evil = await fetch(url, { method: 'OPTIONS', headers: { Origin: 'https://evil.example' } });
    t.equal(evil.status, 403);
  });
});
