// Rosters, subscriptions and presence between real clients (RFC 6121).
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer } from '../helpers/harness.js';
import { connect, nothingArrived, xml, type TestClient } from '../helpers/clients.js';
import { rowsOwnedBy } from '../helpers/owned-rows.js';
import { makeJid } from '../../src/jid.js';

const ROSTER = 'jabber:iq:roster';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence'];
let ids = 0;

async function iq(c: TestClient, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = `q${++ids}`;
  await c.send(xml('iq', { type, id, ...(to ? { to } : {}) }, payload));
  return c.next((el) => el.name === 'iq' && el.attrs.id === id);
}

const rosterGet = (c: TestClient, ver?: string) => iq(c, 'get', xml('query', { xmlns: ROSTER, ...(ver !== undefined ? { ver } : {}) }));
const rosterSet = (c: TestClient, item: Record<string, string>, groups: string[] = []) =>
  iq(c, 'set', xml('query', { xmlns: ROSTER }, xml('item', item, ...groups.map((g) => xml('group', {}, g)))));
const isPush = (jid: string) => (el: Element) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === jid;
const presenceFrom = (from: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;
const items = (el: Element) => el.getChild('query', ROSTER)!.getChildren('item');

t.test('roster management', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { roster: { max_items: 3 } } });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const a1 = await connect(ts, 'alice', { resource: 'one' });
  const a2 = await connect(ts, 'alice', { resource: 'two' });
  t.teardown(() => Promise.all([a1.stop(), a2.stop()]));

  const empty = await rosterGet(a1);
  t.equal(items(empty).length, 0, 'an empty roster');
  t.equal(empty.getChild('query')!.attrs.ver, '0', 'with a version');
  await rosterGet(a2); // a2 is now interested in pushes

  t.test('set: pushes to every interested resource, groups and names kept', async (t) => {
    const result = await rosterSet(a1, { jid: 'Bob@Localhost', name: 'Bob' }, ['Friends', 'Work']);
    t.equal(result.attrs.type, 'result');
    for (const c of [a1, a2]) {
      const push = await c.next(isPush('bob@localhost'));
      const item = push.getChild('query')!.getChild('item')!;
      t.equal(item.attrs.name, 'Bob');
      t.equal(item.attrs.subscription, 'none');
      t.same(
        item.getChildren('group').map((g) => g.getText()),
        ['Friends', 'Work'],
      );
    }
    const roster = await rosterGet(a1);
    t.equal(items(roster).length, 1);
  });

  t.test('bad sets are refused with the RFC errors', async (t) => {
    const cond = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;
    t.equal(cond(await rosterSet(a1, { jid: 'x@localhost' }, ['a', 'a'])), 'bad-request', 'duplicate group');
    t.equal(cond(await rosterSet(a1, { jid: 'x@localhost' }, [''])), 'not-acceptable', 'empty group');
    t.equal(cond(await rosterSet(a1, { jid: 'x@localhost', subscription: 'both' })), 'bad-request', 'subscription set by hand');
    t.equal(cond(await iq(a1, 'set', xml('query', { xmlns: ROSTER }, xml('item', { jid: 'a@localhost' }), xml('item', { jid: 'b@localhost' })))), 'bad-request', 'two items');
    t.equal(cond(await iq(a1, 'get', xml('query', { xmlns: ROSTER }), 'bob@localhost')), 'forbidden', "someone else's roster");
  });

  t.test('versioning: only the changes since a known version', async (t) => {
    const full = await rosterGet(a1);
    const ver = full.getChild('query')!.attrs.ver!;
    await rosterSet(a1, { jid: 'carol@localhost' });
    await rosterSet(a1, { jid: 'bob@localhost', subscription: 'remove' });
    const delta = await rosterGet(a1, ver);
    t.notOk(delta.getChild('query'), 'an empty result');
    const added = await a1.next(isPush('carol@localhost'));
    t.ok(added);
    const removed = await a1.next((el) => isPush('bob@localhost')(el) && el.getChild('query')!.getChild('item')!.attrs.subscription === 'remove');
    t.ok(removed, 'the removal comes as a push too');
    const current = await rosterGet(a1, String(Number(ver) + 2));
    t.notOk(current.getChild('query'), 'up to date: empty result');
  });

  t.test('the roster size limit', async (t) => {
    await rosterSet(a1, { jid: 'd@localhost' });
    await rosterSet(a1, { jid: 'e@localhost' });
    const full = await rosterSet(a1, { jid: 'f@localhost' });
    t.equal(full.attrs.type, 'error');
    t.ok(full.getChild('error')?.getChild('not-allowed'));
  });
});

t.test('subscriptions and presence between two users', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  for (const u of ['alice', 'bob', 'carol']) await ts.addUser(u);
  const alice = await connect(ts, 'alice', { resource: 'a' });
  const bob = await connect(ts, 'bob', { resource: 'b' });
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
  await rosterGet(alice);
  await rosterGet(bob);

  await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
  const pushOut = await alice.next(isPush('bob@localhost'));
  t.equal(pushOut.getChild('query')!.getChild('item')!.attrs.ask, 'subscribe', 'pending out on the roster');
  const request = await bob.next(presenceFrom('alice@localhost', 'subscribe'));
  t.ok(request, 'bob gets the request from the bare JID');

  await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
  const bobPush = await bob.next(isPush('alice@localhost'));
  t.equal(bobPush.getChild('query')!.getChild('item')!.attrs.subscription, 'from', "bob's item: from");
  const alicePush = await alice.next((el) => isPush('bob@localhost')(el) && el.getChild('query')!.getChild('item')!.attrs.subscription === 'to');
  t.ok(alicePush, "alice's item: to");
  t.ok(await alice.next(presenceFrom('alice@localhost'.replace('alice', 'bob'), 'subscribed')), 'alice is told');
  t.ok(await alice.next(presenceFrom(bob.jid)), "and gets bob's current presence");

  t.test('presence changes reach subscribers; unavailable on disconnect', async (t) => {
    await bob.send(xml('presence', {}, xml('show', {}, 'away')));
    const away = await alice.next((el) => presenceFrom(bob.jid)(el) && el.getChildText('show') === 'away');
    t.ok(away);
    const bob2 = await connect(ts, 'bob', { resource: 'b2' });
    t.ok(await alice.next(presenceFrom(bob2.jid)), 'a new resource is broadcast');
    t.ok(await bob2.next(presenceFrom(bob.jid)), "the new resource sees the user's other resource");
    await bob2.stop();
    t.ok(await alice.next(presenceFrom(bob2.jid, 'unavailable')), 'unavailable when it goes');
  });

  t.test('a probe at login: alice logs in again and learns bob is online', async (t) => {
    const alice2 = await connect(ts, 'alice', { resource: 'a2' });
    t.ok(await alice2.next(presenceFrom(bob.jid)));
    await alice2.stop();
  });

  t.test('pending requests are re-sent at login and pre-approval', async (t) => {
    await alice.send(xml('presence', { to: 'carol@localhost', type: 'subscribe' }));
    await alice.roundTrip();
    const carol = await connect(ts, 'carol', { resource: 'c' });
    t.ok(await carol.next(presenceFrom('alice@localhost', 'subscribe')), 'carol was offline: the request comes at login');
    await carol.send(xml('presence', { to: 'alice@localhost', type: 'unsubscribed' }));
    t.ok(await alice.next(presenceFrom('carol@localhost', 'unsubscribed')), 'refused');
    // Pre-approval: carol approves bob before he asks.
    await carol.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    await carol.roundTrip();
    await bob.send(xml('presence', { to: 'carol@localhost', type: 'subscribe' }));
    t.ok(await bob.next(presenceFrom('carol@localhost', 'subscribed')), 'the server approves for carol');
    t.ok(await nothingArrived(carol, presenceFrom('bob@localhost', 'subscribe'), bob), 'carol is not asked');
    await carol.stop();
  });

  t.test('directed presence is undone when the session ends', async (t) => {
    const carol = await connect(ts, 'carol', { resource: 'c2' });
    const alice3 = await connect(ts, 'alice', { resource: 'a3', presence: false });
    await alice3.send(xml('presence', { to: carol.jid }));
    t.ok(await carol.next(presenceFrom(alice3.jid)));
    await alice3.stop();
    t.ok(await carol.next(presenceFrom(alice3.jid, 'unavailable')), 'carol learns it went away');
    await carol.stop();
  });

  t.test('unsubscribe ends it both ways in the rosters', async (t) => {
    await alice.send(xml('presence', { to: 'bob@localhost', type: 'unsubscribe' }));
    const push = await bob.next((el) => isPush('alice@localhost')(el) && el.getChild('query')!.getChild('item')!.attrs.subscription === 'none');
    t.ok(push, "bob's item back to none");
  });

  t.test('deleting an account leaves none of its rows', async (t) => {
    await ts.server.core.accounts.delete(makeJid('alice', 'localhost'));
    const counts = await rowsOwnedBy(ts.server.core.storage, 'localhost', 'alice');
    t.ok(Object.keys(counts).includes('roster_item'), 'roster tables are checked');
    t.same(
      Object.values(counts).filter((n) => n > 0),
      [],
      JSON.stringify(counts),
    );
  });
});
