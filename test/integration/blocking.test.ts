// XEP-0191 Blocking Command over real sockets: the list and its pushes, what a blocked entity
// can no longer do (and what it sees), what the user can no longer send, presence on block and
// unblock, JID matching, limits, persistence, and the list going with the account.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { MapStore } from '../../src/storage/stores.js';
import { parseJid } from '../../src/jid.js';
import { connect, nothingArrived as nothing, xml, type TestClient } from '../helpers/clients.js';
import { DOMAIN, sessionsEnded, startTestServer } from '../helpers/harness.js';
import { rowsOwnedBy } from '../helpers/owned-rows.js';
import { subscribe } from '../helpers/fake-roster.js';

const NS = 'urn:xmpp:blocking';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

const errorCondition = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === STANZAS)?.name;
const body = (text: string) => (el: Element) => el.name === 'message' && el.getChildText('body') === text;

let counter = 0;
async function iq(client: TestClient, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = `b${++counter}`;
  await client.send(xml('iq', to === undefined ? { type, id } : { type, id, to }, payload));
  return client.next((el) => el.name === 'iq' && el.attrs.id === id);
}
const items = (...jids: string[]) => jids.map((jid) => xml('item', { jid }));
const block = (c: TestClient, ...jids: string[]) => iq(c, 'set', xml('block', { xmlns: NS }, ...items(...jids)));
const unblock = (c: TestClient, ...jids: string[]) => iq(c, 'set', xml('unblock', { xmlns: NS }, ...items(...jids)));
const blocklist = async (c: TestClient) =>
  (await iq(c, 'get', xml('blocklist', { xmlns: NS })))
    .getChild('blocklist', NS)!
    .getChildren('item')
    .map((i) => i.attrs.jid);
const isPush = (name: 'block' | 'unblock') => (el: Element) => el.name === 'iq' && el.attrs.type === 'set' && !!el.getChild(name, NS);

t.test('blocking', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: ['sasl', 'ping', 'disco', 'test-roster', 'offline', 'vcard', 'last', 'blocking'],
    modules: { blocking: { max_items: 8 } },
  });
  for (const u of ['alice', 'bob', 'carol', 'dave']) await ts.addUser(u);
  const clients: TestClient[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.stop())));
  const a1 = await connect(ts, 'alice', { resource: 'a1' });
  const a2 = await connect(ts, 'alice', { resource: 'a2' });
  const bob = await connect(ts, 'bob', { resource: 'b' });
  const c1 = await connect(ts, 'carol', { resource: 'c1' });
  const c2 = await connect(ts, 'carol', { resource: 'c2' });
  clients.push(a1, a2, bob, c1, c2);

  t.test('disco and an empty list', async (t) => {
    const info = await iq(a1, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), DOMAIN);
    t.ok(
      info
        .getChild('query')!
        .getChildren('feature')
        .some((f) => f.attrs.var === NS),
      'urn:xmpp:blocking advertised',
    );
    const reply = await iq(a1, 'get', xml('blocklist', { xmlns: NS }));
    t.equal(reply.attrs.type, 'result');
    t.equal(reply.attrs.from, undefined, 'answered by the server, without from');
    t.same(reply.getChild('blocklist', NS)!.children, [], 'an empty <blocklist/>');
  });

  t.test('block: result, a push to resources that asked for the list only, and the contact sees the user go offline', async (t) => {
    subscribe('alice@localhost', 'bob@localhost', 'both');
    subscribe('bob@localhost', 'alice@localhost', 'both');
    // bob's client shows as available to alice's resources (directed presence, no presence module here).
    await bob.send(xml('presence', { to: 'alice@localhost' }));
    await a1.next((el) => el.name === 'presence' && el.attrs.from === bob.jid && el.attrs.type === undefined);
    await a2.next((el) => el.name === 'presence' && el.attrs.from === bob.jid && el.attrs.type === undefined);

    const reply = await block(a1, 'Bob@LocalHost');
    t.equal(reply.attrs.type, 'result');
    const push = await a1.next(isPush('block'));
    t.same(
      push
        .getChild('block', NS)!
        .getChildren('item')
        .map((i) => i.attrs.jid),
      ['bob@localhost'],
      'the push names the prepared JID',
    );
    t.ok(await nothing(a2, isPush('block'), a1), 'a2 never asked for the list: no push');

    const offline = await bob.next((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === a1.jid);
    t.ok(offline, 'bob gets unavailable presence from alice/a1');
    t.ok(await bob.next((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === a2.jid), 'and from alice/a2');
    t.ok(await a1.next((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === bob.jid), "alice's clients see bob go offline");
    t.same(await blocklist(a2), ['bob@localhost'], 'a2 reads the list');
  });

  t.test('a second block pushes to every resource that asked', async (t) => {
    await block(a1, 'dave@localhost');
    t.ok(await a1.next(isPush('block')));
    t.ok(await a2.next(isPush('block')), 'a2 asked since');
    t.same(await blocklist(a1), ['bob@localhost', 'dave@localhost']);
  });

  t.test('bad blocks', async (t) => {
    t.equal(errorCondition(await iq(a1, 'set', xml('block', { xmlns: NS }))), 'bad-request', 'no item');
    t.equal(errorCondition(await block(a1, 'a@b@c')), 'jid-malformed');
    t.equal(errorCondition(await iq(a1, 'set', xml('block', { xmlns: NS }, xml('item')))), 'bad-request', 'an item without jid');
  });

  t.test('inbound from a blocked entity', async (t) => {
    await bob.send(xml('message', { to: 'alice@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'to bare')));
    const e1 = await bob.next((el) => el.name === 'message' && el.attrs.id === 'm1');
    t.equal(e1.attrs.type, 'error');
    t.equal(errorCondition(e1), 'service-unavailable', 'message to the bare JID: service-unavailable');
    await bob.send(xml('message', { to: a1.jid, type: 'chat', id: 'm2' }, xml('body', {}, 'to full')));
    t.equal(errorCondition(await bob.next((el) => el.attrs.id === 'm2')), 'service-unavailable', 'message to a full JID');
    t.ok(await nothing(a1, body('to bare'), bob), 'not delivered');
    t.ok(await nothing(a1, body('to full'), bob));

    await bob.send(xml('iq', { to: a1.jid, type: 'get', id: 'i1' }, xml('query', { xmlns: 'jabber:iq:version' })));
    const e3 = await bob.next((el) => el.attrs.id === 'i1');
    t.equal(errorCondition(e3), 'service-unavailable', 'IQ get to a full JID');
    t.ok(await nothing(a1, (el) => el.attrs.id === 'i1', bob), 'not delivered');

    const vcard = await iq(bob, 'get', xml('vCard', { xmlns: 'vcard-temp' }), 'alice@localhost');
    t.equal(errorCondition(vcard), 'service-unavailable', 'IQ to the bare JID, answered by the server for alice: service-unavailable too');

    await bob.send(xml('presence', { to: 'alice@localhost' }));
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    t.ok(await nothing(a1, (el) => el.name === 'presence' && el.attrs.from?.startsWith('bob@') === true, bob), 'presence dropped');
    t.ok(await nothing(bob, (el) => el.name === 'presence' && el.attrs.type === 'error'), 'silently');

    await c1.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'from carol')));
    t.ok(await a1.next(body('from carol')), 'others still get through');
  });

  t.test('a blocked sender to an offline user: refused, not stored', async (t) => {
    const dave = await connect(ts, 'dave', { resource: 'd' });
    clients.push(dave);
    await bob.send(xml('message', { to: 'dave@localhost', type: 'chat', id: 'off1' }, xml('body', {}, 'dave is offline')));
    await c1.send(xml('message', { to: 'dave@localhost', type: 'chat', id: 'off2' }, xml('body', {}, 'for dave')));
    t.ok(await dave.next(body('for dave')), 'dave (online) gets carol');
    await dave.stop();
    await sessionsEnded(ts, 'dave');
    // alice blocked dave: dave's messages to alice bounce even when alice's list is not cached.
    await a1.stop();
    await a2.stop();
    await sessionsEnded(ts, 'alice');
    const dave2 = await connect(ts, 'dave', { resource: 'd2' });
    clients.push(dave2);
    await dave2.send(xml('message', { to: 'alice@localhost', type: 'chat', id: 'off3' }, xml('body', {}, 'alice is offline')));
    t.equal(errorCondition(await dave2.next((el) => el.attrs.id === 'off3')), 'service-unavailable', 'refused while alice is offline');
    const rows = await rowsOwnedBy(ts.server.core.storage, DOMAIN, 'alice');
    const offlineRows = Object.entries(rows)
      .filter(([table]) => table.includes('offline'))
      .reduce((n, [, v]) => n + v, 0);
    t.equal(offlineRows, 0, 'nothing stored offline for alice');
  });

  t.test('the list outlives the session', async (t) => {
    const a3 = await connect(ts, 'alice', { resource: 'a3' });
    clients.push(a3);
    t.same(await blocklist(a3), ['bob@localhost', 'dave@localhost']);
    await bob.send(xml('message', { to: a3.jid, type: 'chat', id: 'm5' }, xml('body', {}, 'still blocked')));
    t.equal(errorCondition(await bob.next((el) => el.attrs.id === 'm5')), 'service-unavailable');
  });

  t.test('outbound to a blocked entity: not-acceptable with <blocked/>', async (t) => {
    const a = await connect(ts, 'alice', { resource: 'out' });
    clients.push(a);
    await a.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'o1' }, xml('body', {}, 'hello bob')));
    const err = await a.next((el) => el.attrs.id === 'o1');
    t.equal(err.attrs.type, 'error');
    t.equal(err.attrs.from, 'bob@localhost');
    t.equal(errorCondition(err), 'not-acceptable');
    t.ok(err.getChild('error')!.getChild('blocked', 'urn:xmpp:blocking:errors'), 'the blocked condition');
    t.ok(await nothing(bob, body('hello bob'), a), 'not routed');

    await a.send(xml('iq', { to: bob.jid, type: 'get', id: 'o2' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    const iqErr = await a.next((el) => el.attrs.id === 'o2');
    t.equal(errorCondition(iqErr), 'not-acceptable', 'IQs too');
    t.ok(await nothing(bob, (el) => el.attrs.id === 'o2', a));

    await a.send(xml('presence', { to: 'bob@localhost', type: 'subscribe', id: 'o3' }));
    t.equal(errorCondition(await a.next((el) => el.attrs.id === 'o3')), 'not-acceptable', 'and presence');
    await a.stop();
  });

  t.test('JID matching: domains (and subdomains), full JIDs', async (t) => {
    const a = await connect(ts, 'alice', { resource: 'match' });
    clients.push(a);
    await block(a, 'example.net', c1.jid);
    await a.send(xml('message', { to: 'someone@chat.example.net', type: 'chat', id: 'd1' }, xml('body', {}, 'far')));
    const far = await a.next((el) => el.attrs.id === 'd1');
    t.equal(errorCondition(far), 'not-acceptable', 'a subdomain of a blocked domain');
    t.ok(far.getChild('error')!.getChild('blocked', 'urn:xmpp:blocking:errors'));

    await c1.send(xml('message', { to: a.jid, type: 'chat', id: 'f1' }, xml('body', {}, 'from c1')));
    t.equal(errorCondition(await c1.next((el) => el.attrs.id === 'f1')), 'service-unavailable', 'the blocked resource');
    await c2.send(xml('message', { to: a.jid, type: 'chat' }, xml('body', {}, 'from c2')));
    t.ok(await a.next(body('from c2')), 'another resource of the same account gets through');

    await a.send(xml('message', { to: c2.jid, type: 'chat' }, xml('body', {}, 'to c2')));
    t.ok(await c2.next(body('to c2')), 'alice may write to c2');
    await a.send(xml('message', { to: c1.jid, type: 'chat', id: 'f2' }, xml('body', {}, 'to c1')));
    t.equal(errorCondition(await a.next((el) => el.attrs.id === 'f2')), 'not-acceptable', 'not to c1');
    await unblock(a, 'example.net', c1.jid);
  });

  t.test('unblock: push, presence again, and stanzas flow', async (t) => {
    const a = await connect(ts, 'alice', { resource: 'u' });
    clients.push(a);
    t.same(await blocklist(a), ['bob@localhost', 'dave@localhost']);
    const reply = await unblock(a, 'bob@localhost');
    t.equal(reply.attrs.type, 'result');
    const push = await a.next(isPush('unblock'));
    t.same(
      push
        .getChild('unblock', NS)!
        .getChildren('item')
        .map((i) => i.attrs.jid),
      ['bob@localhost'],
    );
    const presence = await bob.next((el) => el.name === 'presence' && el.attrs.from === a.jid && el.attrs.type === undefined);
    t.ok(presence, 'bob gets alice’s current presence back');
    await bob.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'hello again')));
    t.ok(await a.next(body('hello again')), 'bob reaches alice again');
    t.same(await blocklist(a), ['dave@localhost']);
  });

  t.test('limits and unblock all', async (t) => {
    const a = await connect(ts, 'alice', { resource: 'l' });
    clients.push(a);
    await blocklist(a);
    const many = Array.from({ length: 8 }, (_, i) => `spam${i}@example.org`);
    const tooMany = await block(a, ...many);
    t.equal(errorCondition(tooMany), 'not-allowed', 'past max_items');
    t.same(await blocklist(a), ['dave@localhost'], 'nothing added');
    t.equal((await block(a, ...many.slice(0, 7))).attrs.type, 'result', 'up to max_items');
    await a.next(isPush('block'));

    const all = await iq(a, 'set', xml('unblock', { xmlns: NS }));
    t.equal(all.attrs.type, 'result');
    const push = await a.next(isPush('unblock'));
    t.equal(push.getChild('unblock', NS)!.children.length, 0, 'the unblock-all push is empty');
    t.same(await blocklist(a), []);
  });

  t.test('deleting the account deletes its list', async (t) => {
    const a = await connect(ts, 'alice', { resource: 'del' });
    clients.push(a);
    await block(a, 'bob@localhost', 'example.com');
    t.equal((await new MapStore(ts.server.core.storage, 'blocking').all(DOMAIN, 'alice')).size, 2);
    const ended = sessionsEnded(ts, 'alice');
    await ts.server.core.accounts.delete(parseJid('alice@localhost'));
    await ended;
    const after = await rowsOwnedBy(ts.server.core.storage, DOMAIN, 'alice');
    for (const [table, n] of Object.entries(after)) t.equal(n, 0, `${table}: no rows left`);
  });
});

t.test('with the roster and presence modules: presence stops both ways and comes back', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: ['sasl', 'roster', 'presence', 'blocking'] });
  for (const u of ['alice', 'bob']) await ts.addUser(u);
  const clients: TestClient[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.stop())));
  const alice = await connect(ts, 'alice', { resource: 'a' });
  const bob = await connect(ts, 'bob', { resource: 'b' });
  clients.push(alice, bob);
  const presenceFrom = (who: TestClient, show?: string) => (el: Element) =>
    el.name === 'presence' && el.attrs.from === who.jid && el.attrs.type === undefined && (show === undefined || el.getChildText('show') === show);

  // Mutual subscription (RFC 6121 §3): each asks, the other approves.
  for (const [from, to] of [
    [alice, bob],
    [bob, alice],
  ] as const) {
    const toBare = to.jid.split('/')[0]!;
    const fromBare = from.jid.split('/')[0]!;
    await from.send(xml('presence', { to: toBare, type: 'subscribe' }));
    await to.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
    await to.send(xml('presence', { to: fromBare, type: 'subscribed' }));
  }
  await alice.send(xml('presence', {}, xml('show', {}, 'chat')));
  t.ok(await bob.next(presenceFrom(alice, 'chat')), 'subscribed: bob sees alice');

  await block(alice, 'bob@localhost');
  t.ok(await bob.next((el) => el.name === 'presence' && el.attrs.from === alice.jid && el.attrs.type === 'unavailable'), 'bob sees alice go offline');
  t.ok(await alice.next((el) => el.name === 'presence' && el.attrs.from === bob.jid && el.attrs.type === 'unavailable'), 'alice sees bob go offline');

  await alice.send(xml('presence', {}, xml('show', {}, 'away')));
  t.ok(await nothing(bob, presenceFrom(alice, 'away'), alice), "alice's broadcast no longer reaches bob");
  await bob.send(xml('presence', {}, xml('show', {}, 'dnd')));
  t.ok(await nothing(alice, presenceFrom(bob, 'dnd'), bob), "nor bob's alice");

  await unblock(alice, 'bob@localhost');
  t.ok(await bob.next(presenceFrom(alice, 'away')), "unblocked: bob gets alice's current presence");
  t.ok(await alice.next(presenceFrom(bob, 'dnd')), "and alice bob's, through a probe");
});

t.test('JID matching rules (XEP-0191 §4, in the order of XEP-0016)', async (t) => {
  const { isBlockedBy, itemMatches } = await import('../../modules/blocking/match.js');
  const list = (...items: string[]) => new Set(items);
  const j = parseJid;
  t.ok(isBlockedBy(list('juliet@example.com/balcony'), j('juliet@example.com/balcony')), 'full matches that resource');
  t.notOk(isBlockedBy(list('juliet@example.com/balcony'), j('juliet@example.com/chamber')), 'not another');
  t.notOk(isBlockedBy(list('juliet@example.com/balcony'), j('juliet@example.com')), 'nor the bare JID');
  t.ok(isBlockedBy(list('juliet@example.com'), j('juliet@example.com/chamber')), 'bare matches any resource');
  t.ok(isBlockedBy(list('juliet@example.com'), j('juliet@example.com')), 'and itself');
  t.ok(isBlockedBy(list('example.com/bot'), j('example.com/bot')), 'domain/resource matches itself');
  t.notOk(isBlockedBy(list('example.com/bot'), j('juliet@example.com/bot')), 'not a user with that resource');
  t.ok(isBlockedBy(list('example.com'), j('juliet@example.com/x')), 'a domain matches its users');
  t.ok(isBlockedBy(list('example.com'), j('example.com/x')), 'its resources');
  t.ok(isBlockedBy(list('example.com'), j('muc.chat.example.com')), 'and its subdomains');
  t.notOk(isBlockedBy(list('example.com'), j('notexample.com')), 'but not a domain that merely ends the same');
  for (const [item, jid, expected] of [
    ['juliet@example.com/balcony', 'juliet@example.com/balcony', true],
    ['juliet@example.com', 'juliet@example.com/any', true],
    ['example.com/bot', 'juliet@example.com/bot', false],
    ['example.com', 'a.example.com', true],
    ['example.com', 'notexample.com', false],
  ] as const) {
    t.equal(itemMatches(j(item), j(jid)), expected, `itemMatches(${item}, ${jid})`);
  }
});
