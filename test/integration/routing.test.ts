// Routing between real clients (RFC 6120 §10, RFC 6121 §8): bare and full JIDs, priorities,
// 'from' stamping, and the errors for unknown users, resources and domains.
import t from 'tap';
import { startTestServer } from '../helpers/harness.js';
import { connect, nothingArrived, xml, type TestClient } from '../helpers/clients.js';
import type { Element } from '@xmpp/xml';

const body = (text: string) => (el: Element) => el.name === 'message' && el.getChildText('body') === text;
const errorCondition = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;

t.test('routing', async (t) => {
  // The core's own rules, without the IM modules (offline storage would take messages to offline users).
  const ts = await startTestServer(t, { modules_enabled: ['sasl', 'ping', 'disco'] });
  for (const u of ['alice', 'bob', 'carol']) await ts.addUser(u);
  const clients: TestClient[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.stop())));
  const alice = await connect(ts, 'alice', { resource: 'a' });
  const bob1 = await connect(ts, 'bob', { resource: 'one' });
  const bob2 = await connect(ts, 'bob', { resource: 'two' });
  clients.push(alice, bob1, bob2);

  t.test('a message to a full JID reaches that resource only', async (t) => {
    await alice.send(xml('message', { to: bob2.jid, type: 'chat' }, xml('body', {}, 'to two')));
    const got = await bob2.next(body('to two'));
    t.equal(got.attrs.from, alice.jid, 'from is the full JID of the sender');
    t.ok(await nothingArrived(bob1, body('to two'), alice), 'the other resource does not get it');
  });

  t.test('a message to the bare JID reaches the highest-priority resources', async (t) => {
    await bob1.send(xml('presence', {}, xml('priority', {}, '5')));
    await bob2.send(xml('presence', {}, xml('priority', {}, '1')));
    for (const c of [bob1, bob2]) await c.roundTrip();
    await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'to bare')));
    t.ok(await bob1.next(body('to bare')), 'priority 5 gets it');
    t.ok(await nothingArrived(bob2, body('to bare'), alice), 'priority 1 does not');
  });

  t.test('equal top priority: every such resource gets it', async (t) => {
    await bob2.send(xml('presence', {}, xml('priority', {}, '5')));
    await bob2.roundTrip();
    await alice.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'tie')));
    t.ok(await bob1.next(body('tie')));
    t.ok(await bob2.next(body('tie')));
  });

  t.test('a forged from is overwritten', async (t) => {
    await alice.send(xml('message', { to: bob1.jid, from: 'carol@localhost/evil', type: 'chat' }, xml('body', {}, 'forged')));
    const got = await bob1.next(body('forged'));
    t.equal(got.attrs.from, alice.jid);
  });

  t.test('an IQ to a resource that is not there gets service-unavailable', async (t) => {
    await alice.send(xml('iq', { to: 'bob@localhost/gone', type: 'get', id: 'q1' }, xml('query', { xmlns: 'jabber:iq:version' })));
    const reply = await alice.next((el) => el.name === 'iq' && el.attrs.id === 'q1');
    t.equal(reply.attrs.type, 'error');
    t.equal(errorCondition(reply), 'service-unavailable');
  });

  t.test('an IQ between full JIDs is delivered and answered', async (t) => {
    await alice.send(xml('iq', { to: bob1.jid, type: 'get', id: 'v1' }, xml('query', { xmlns: 'urn:example:x' })));
    const request = await bob1.next((el) => el.name === 'iq' && el.attrs.id === 'v1');
    t.equal(request.attrs.from, alice.jid);
  });

  t.test('a message to an unknown user gets service-unavailable', async (t) => {
    await alice.send(xml('message', { to: 'nobody@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'hello?')));
    const reply = await alice.next((el) => el.name === 'message' && el.attrs.id === 'm1');
    t.equal(reply.attrs.type, 'error');
    t.equal(errorCondition(reply), 'service-unavailable');
  });

  t.test('a message to an offline user without offline storage gets service-unavailable', async (t) => {
    await alice.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'm2' }, xml('body', {}, 'are you there')));
    const reply = await alice.next((el) => el.name === 'message' && el.attrs.id === 'm2');
    t.equal(errorCondition(reply), 'service-unavailable');
  });

  t.test('a message to another domain gets remote-server-not-found (no federation yet)', async (t) => {
    await alice.send(xml('message', { to: 'someone@example.net', type: 'chat', id: 'm3' }, xml('body', {}, 'far away')));
    const reply = await alice.next((el) => el.name === 'message' && el.attrs.id === 'm3');
    t.equal(errorCondition(reply), 'remote-server-not-found');
  });

  t.test('a malformed to gets jid-malformed', async (t) => {
    await alice.send(xml('message', { to: 'a@b@c', type: 'chat', id: 'm4' }, xml('body', {}, 'x')));
    const reply = await alice.next((el) => el.name === 'message' && el.attrs.id === 'm4');
    t.equal(errorCondition(reply), 'jid-malformed');
  });

  t.test('the server answers ping and disco; unknown IQs get service-unavailable', async (t) => {
    await alice.send(xml('iq', { to: 'localhost', type: 'get', id: 'p1' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    t.equal((await alice.next((el) => el.attrs.id === 'p1')).attrs.type, 'result');
    await alice.send(xml('iq', { type: 'get', id: 'p2' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    t.equal((await alice.next((el) => el.attrs.id === 'p2')).attrs.type, 'result', 'a ping without to is answered too');
    await alice.send(xml('iq', { to: 'localhost', type: 'get', id: 'd1' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const info = await alice.next((el) => el.attrs.id === 'd1');
    const features = info
      .getChild('query')!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    t.ok(features.includes('urn:xmpp:ping'), 'ping advertised in disco');
    await alice.send(xml('iq', { to: 'localhost', type: 'get', id: 'u1' }, xml('query', { xmlns: 'urn:example:unknown' })));
    t.equal(errorCondition(await alice.next((el) => el.attrs.id === 'u1')), 'service-unavailable');
  });
});
