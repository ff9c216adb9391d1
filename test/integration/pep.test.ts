// PEP (XEP-0163) over real sockets, on SQLite and on PostgreSQL: the OMEMO, avatar and
// bookmarks flows clients rely on, access models, notifications filtered by caps, last
// published items, the owner's use cases, subscriptions, and account deletion.
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer } from '../helpers/harness.js';
import { errorCondition, nothingArrived, xml } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { rowsOwnedBy } from '../helpers/owned-rows.js';
import { connectWithCaps, dataForm, eventFor, iq, items, itemsOf, OWNER, publish, PUBSUB, pubsubCondition } from '../helpers/pubsub.js';
import { makeJid } from '../../src/jid.js';
import { befriend } from './pep-helpers.js';

const MODULES = ['sasl', 'ping', 'disco', 'caps', 'roster', 'presence', 'pubsub'];
const DEVICELIST = 'eu.siacs.conversations.axolotl.devicelist';
const OMEMO = 'eu.siacs.conversations.axolotl';
const AVATAR_DATA = 'urn:xmpp:avatar:data';
const AVATAR_META = 'urn:xmpp:avatar:metadata';
const BOOKMARKS = 'urn:xmpp:bookmarks:1';
const ALICE = 'alice@localhost';

const deviceList = (...ids: string[]) => xml('list', { xmlns: OMEMO }, ...ids.map((id) => xml('device', { id })));
const OPEN = { 'pubsub#access_model': 'open' };
const BOOKMARK_OPTIONS = {
  'pubsub#persist_items': 'true',
  'pubsub#max_items': 'max',
  'pubsub#send_last_published_item': 'never',
  'pubsub#access_model': 'whitelist',
};
const ok = (el: Element) => el.attrs.type === 'result';

async function scenario(t: Test, overrides: Record<string, unknown>): Promise<void> {
  const ts = await startTestServer(t, { ...overrides, modules_enabled: MODULES, modules: { pubsub: { max_item_size: 4096 } } });
  for (const u of ['alice', 'bob', 'carol']) await ts.addUser(u);
  const notifyAll = [DEVICELIST, AVATAR_META, BOOKMARKS].map((n) => `${n}+notify`);
  const alice = await connectWithCaps(ts, 'alice', notifyAll, { resource: 'one' });
  const bob = await connectWithCaps(ts, 'bob', notifyAll, { resource: 'b' });
  const carol = await connectWithCaps(ts, 'carol', notifyAll, { resource: 'c' });
  t.teardown(() => Promise.all([alice.stop(), bob.stop(), carol.stop()]));
  await iq(alice, 'get', xml('query', { xmlns: 'jabber:iq:roster' }));
  await iq(bob, 'get', xml('query', { xmlns: 'jabber:iq:roster' }));
  await befriend(alice, bob);

  t.test('disco: the account is a PEP service', async (t) => {
    const info = await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), ALICE);
    const query = info.getChild('query')!;
    t.ok(
      query.getChildren('identity').some((i) => i.attrs.category === 'pubsub' && i.attrs.type === 'pep'),
      'pubsub/pep identity',
    );
    const features = query.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['publish-options', 'auto-create', 'access-whitelist', 'last-published']) t.ok(features.includes(`${PUBSUB}#${f}`), f);
  });

  t.test('OMEMO: an open device list, fetched by a stranger; contacts with +notify get it', async (t) => {
    const result = await publish(alice, DEVICELIST, deviceList('1234', '5678'), { id: 'current', publishOptions: OPEN });
    t.ok(ok(result), 'published');
    t.equal(result.getChild('pubsub')?.getChild('publish')?.getChild('item')?.attrs.id, 'current');
    const event = await bob.next(eventFor(ALICE, DEVICELIST));
    t.equal(event.attrs.type, 'headline');
    t.same(
      event
        .getChild('event')!
        .getChild('items')!
        .getChild('item')!
        .getChild('list', OMEMO)!
        .getChildren('device')
        .map((d) => d.attrs.id),
      ['1234', '5678'],
    );
    t.ok(await alice.next(eventFor(ALICE, DEVICELIST)), "the owner's own resource gets it too");
    t.ok(await nothingArrived(carol, eventFor(ALICE, DEVICELIST), alice), 'not a contact: no notification');

    const bundleNode = `${OMEMO}.bundles:1234`;
    const bundle = xml('bundle', { xmlns: OMEMO }, xml('signedPreKeyPublic', { signedPreKeyId: '1' }, 'AAAA'), xml('identityKey', {}, 'BBBB'));
    t.ok(ok(await publish(alice, bundleNode, bundle, { id: 'current', publishOptions: OPEN })));
    const fetched = await items(carol, ALICE, DEVICELIST);
    t.ok(ok(fetched), 'a stranger fetches the open device list');
    t.equal(itemsOf(fetched)[0]?.attrs.id, 'current');
    const bundles = await items(carol, ALICE, bundleNode, { max_items: '1' });
    t.equal(itemsOf(bundles)[0]?.getChild('bundle', OMEMO)?.getChildText('identityKey'), 'BBBB');

    const again = await publish(alice, DEVICELIST, deviceList('1234'), { id: 'current', publishOptions: { 'pubsub#access_model': 'presence' } });
    t.equal(errorCondition(again), 'conflict');
    t.equal(pubsubCondition(again), 'precondition-not-met', 'publish-options that differ from the node');
    t.ok(ok(await publish(alice, DEVICELIST, deviceList('1234'), { id: 'current', publishOptions: OPEN })), 'the same options pass');
    const list = await items(bob, ALICE, DEVICELIST);
    t.equal(itemsOf(list).length, 1, 'one item: the same id replaced');
  });

  t.test('avatars: presence access; metadata notifies, data does not', async (t) => {
    const data = await publish(alice, AVATAR_DATA, xml('data', { xmlns: AVATAR_DATA }, 'iVBORw0KGgo='), { id: 'abc' });
    t.ok(ok(data));
    const meta = await publish(alice, AVATAR_META, xml('metadata', { xmlns: AVATAR_META }, xml('info', { id: 'abc', bytes: '8', type: 'image/png' })), { id: 'abc' });
    t.ok(ok(meta));
    t.ok(await bob.next(eventFor(ALICE, AVATAR_META)), 'metadata notification to the contact');
    t.ok(await nothingArrived(bob, eventFor(ALICE, AVATAR_DATA), alice), 'no +notify for data: no notification');
    t.equal(itemsOf(await items(bob, ALICE, AVATAR_DATA, {}, ['abc']))[0]?.getChildText('data'), 'iVBORw0KGgo=', 'a contact retrieves the data by id');
    const denied = await items(carol, ALICE, AVATAR_DATA);
    t.equal(errorCondition(denied), 'not-authorized');
    t.equal(pubsubCondition(denied), 'presence-subscription-required', 'a stranger may not');

    const bob2 = await connectWithCaps(ts, 'bob', [`${AVATAR_META}+notify`], { resource: 'b2' });
    const last = await bob2.next(eventFor(ALICE, AVATAR_META));
    t.equal(last.getChild('event')!.getChild('items')!.getChild('item')!.attrs.id, 'abc', 'a contact coming online gets the last item');
    await bob2.stop();
  });

  t.test('bookmarks 2: whitelist, max items, between two resources', async (t) => {
    const alice2 = await connectWithCaps(ts, 'alice', notifyAll, { resource: 'two' });
    t.teardown(() => alice2.stop());
    const conference = (name: string) => xml('conference', { xmlns: BOOKMARKS, name, autojoin: 'true' }, xml('nick', {}, 'al'));
    t.ok(ok(await publish(alice, BOOKMARKS, conference('One'), { id: 'one@conference.localhost', publishOptions: BOOKMARK_OPTIONS })));
    t.ok(ok(await publish(alice, BOOKMARKS, conference('Two'), { id: 'two@conference.localhost', publishOptions: BOOKMARK_OPTIONS })));
    const seen = await alice2.next(eventFor(ALICE, BOOKMARKS));
    t.equal(seen.getChild('event')!.getChild('items')!.getChild('item')!.attrs.id, 'one@conference.localhost', 'the other resource is told');
    const all = await items(alice2, undefined, BOOKMARKS);
    t.same(
      itemsOf(all).map((i) => i.attrs.id),
      ['one@conference.localhost', 'two@conference.localhost'],
      'max_items=max keeps both',
    );
    const denied = await items(bob, ALICE, BOOKMARKS);
    t.equal(pubsubCondition(denied), 'closed-node', 'a contact may not read a whitelist node');
    t.ok(await nothingArrived(bob, eventFor(ALICE, BOOKMARKS), alice), 'nor is told');

    const retract = await iq(alice, 'set', xml('pubsub', { xmlns: PUBSUB }, xml('retract', { node: BOOKMARKS, notify: 'true' }, xml('item', { id: 'one@conference.localhost' }))));
    t.ok(ok(retract));
    const gone = await alice2.next((el) => eventFor(ALICE, BOOKMARKS)(el) && !!el.getChild('event')!.getChild('items')!.getChild('retract'));
    t.equal(gone.getChild('event')!.getChild('items')!.getChild('retract')!.attrs.id, 'one@conference.localhost');
    const bob2 = await connectWithCaps(ts, 'alice', notifyAll, { resource: 'three' });
    t.ok(await nothingArrived(bob2, eventFor(ALICE, BOOKMARKS)), 'send_last_published_item=never: nothing at login');
    await bob2.stop();
  });

  t.test('owner: create, configure, purge, delete; ids and max_items', async (t) => {
    const node = 'urn:example:notes';
    t.ok(
      ok(
        await iq(
          alice,
          'set',
          xml(
            'pubsub',
            { xmlns: PUBSUB },
            xml('create', { node }),
            xml('configure', {}, dataForm(`${PUBSUB}#node_config`, { 'pubsub#max_items': '2', 'pubsub#access_model': 'open' })),
          ),
        ),
      ),
    );
    t.equal(errorCondition(await iq(alice, 'set', xml('pubsub', { xmlns: PUBSUB }, xml('create', { node })))), 'conflict', 'exists already');
    t.equal(errorCondition(await publish(bob, node, xml('note', { xmlns: 'urn:example' }), { to: ALICE })), 'forbidden', 'only the owner publishes');
    const generated = await publish(alice, node, xml('note', { xmlns: 'urn:example' }, '1'));
    const id1 = generated.getChild('pubsub')!.getChild('publish')!.getChild('item')!.attrs.id;
    t.ok(id1, 'a server-generated id');
    await publish(alice, node, xml('note', { xmlns: 'urn:example' }, '2'), { id: 'n2' });
    await publish(alice, node, xml('note', { xmlns: 'urn:example' }, '3'), { id: 'n3' });
    t.same(
      itemsOf(await items(carol, ALICE, node)).map((i) => i.attrs.id),
      ['n2', 'n3'],
      'max_items 2: the oldest went',
    );
    t.same(
      itemsOf(await items(carol, ALICE, node, { max_items: '1' })).map((i) => i.attrs.id),
      ['n3'],
      'max_items on retrieval: the newest',
    );

    const form = await iq(alice, 'get', xml('pubsub', { xmlns: OWNER }, xml('configure', { node })));
    const fields = form.getChild('pubsub')!.getChild('configure')!.getChild('x')!.getChildren('field');
    t.equal(fields.find((f) => f.attrs.var === 'pubsub#max_items')?.getChildText('value'), '2', 'the configuration form');
    t.equal(errorCondition(await iq(bob, 'get', xml('pubsub', { xmlns: OWNER }, xml('configure', { node })), ALICE)), 'forbidden', 'not for others');
    const bad = await iq(alice, 'set', xml('pubsub', { xmlns: OWNER }, xml('configure', { node }, dataForm(`${PUBSUB}#node_config`, { 'pubsub#access_model': 'authorize' }))));
    t.equal(errorCondition(bad), 'not-acceptable', 'an access model not built');

    const sub = await iq(carol, 'set', xml('pubsub', { xmlns: PUBSUB }, xml('subscribe', { node, jid: carol.jid })), ALICE);
    t.equal(sub.getChild('pubsub')?.getChild('subscription')?.attrs.subscription, 'subscribed', 'a stranger subscribes to an open node');
    t.ok(await carol.next(eventFor(ALICE, node)), 'and gets the last item');
    await publish(alice, node, xml('note', { xmlns: 'urn:example' }, '4'), { id: 'n4' });
    t.ok(await carol.next(eventFor(ALICE, node)), 'and new ones');
    const subs = await iq(carol, 'get', xml('pubsub', { xmlns: PUBSUB }, xml('subscriptions')), ALICE);
    t.equal(subs.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').length, 1, 'its subscriptions');

    t.ok(ok(await iq(alice, 'set', xml('pubsub', { xmlns: OWNER }, xml('purge', { node })))));
    t.ok(await carol.next((el) => el.name === 'message' && !!el.getChild('event')?.getChild('purge')), 'purge notified');
    t.equal(itemsOf(await items(alice, undefined, node)).length, 0, 'purged');
    t.ok(ok(await iq(alice, 'set', xml('pubsub', { xmlns: OWNER }, xml('delete', { node })))));
    t.ok(await carol.next((el) => el.name === 'message' && el.getChild('event')?.getChild('delete')?.attrs.node === node), 'delete notified');
    t.equal(errorCondition(await items(carol, ALICE, node)), 'item-not-found', 'gone');
    const own = await items(alice, undefined, node);
    t.ok(ok(own) && itemsOf(own).length === 0, 'the account itself reads a node it has not published to as empty (Profanity reads its device list so)');
    const unsub = await iq(carol, 'set', xml('pubsub', { xmlns: PUBSUB }, xml('unsubscribe', { node: DEVICELIST, jid: carol.jid })), ALICE);
    t.equal(pubsubCondition(unsub), 'not-subscribed');
  });

  t.test('whitelist members and the roster access model', async (t) => {
    const node = 'urn:example:private';
    await publish(alice, node, xml('x', { xmlns: 'urn:example' }), { id: 'a', publishOptions: { 'pubsub#access_model': 'whitelist' } });
    t.equal(pubsubCondition(await items(carol, ALICE, node)), 'closed-node');
    const set = await iq(alice, 'set', xml('pubsub', { xmlns: OWNER }, xml('affiliations', { node }, xml('affiliation', { jid: 'carol@localhost', affiliation: 'member' }))));
    t.ok(ok(set));
    t.ok(ok(await items(carol, ALICE, node)), 'a member may read');
    const affs = await iq(alice, 'get', xml('pubsub', { xmlns: OWNER }, xml('affiliations', { node })));
    t.same(
      affs
        .getChild('pubsub')!
        .getChild('affiliations')!
        .getChildren('affiliation')
        .map((a) => `${a.attrs.jid} ${a.attrs.affiliation}`),
      ['alice@localhost owner', 'carol@localhost member'],
    );

    const groups = 'urn:example:friends';
    await publish(alice, groups, xml('x', { xmlns: 'urn:example' }), { id: 'a' });
    t.ok(
      ok(
        await iq(
          alice,
          'set',
          xml(
            'pubsub',
            { xmlns: OWNER },
            xml('configure', { node: groups }, dataForm(`${PUBSUB}#node_config`, { 'pubsub#access_model': 'roster', 'pubsub#roster_groups_allowed': ['Friends'] })),
          ),
        ),
      ),
    );
    t.equal(pubsubCondition(await items(bob, ALICE, groups)), 'not-in-roster-group');
    await iq(alice, 'set', xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'bob@localhost' }, xml('group', {}, 'Friends'))));
    t.ok(ok(await items(bob, ALICE, groups)), 'a contact in an allowed group may read');
  });

  t.test('limits: item size', async (t) => {
    const big = await publish(alice, 'urn:example:big', xml('x', { xmlns: 'urn:example' }, 'a'.repeat(5000)));
    t.equal(pubsubCondition(big), 'payload-too-big');
  });

  t.test('account deletion removes its nodes', async (t) => {
    await ts.server.core.accounts.delete(makeJid('alice', 'localhost'));
    const counts = await rowsOwnedBy(ts.server.core.storage, 'localhost', 'alice');
    t.equal(counts.pubsub_node, 0, 'no nodes left');
    const store = ts.server.core.storage.db;
    const left = await store
      .selectFrom('pubsub_item' as never)
      .select((eb) => eb.fn.countAll().as('n'))
      .where('service' as never, '=', ALICE as never)
      .executeTakeFirst();
    t.equal(Number((left as { n: unknown }).n), 0, 'nor items');
  });
}

t.test('sqlite', (t) => scenario(t, {}));
t.test('postgres', (t) => onPostgres(t, 'starling_pep', (overrides) => scenario(t, overrides)));
