// The general pubsub service (XEP-0060) at pubsub.<host> over real sockets, on SQLite and on
// PostgreSQL: disco, create (configured and instant), publish with notifications to
// subscribers, retrieval, retract, affiliations, configure, purge, delete, auto-create, nodes
// that outlive their creator's account, and node_creation = "admins" (admins own every node).
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer } from '../helpers/harness.js';
import { connect, errorCondition, xml, type TestClient } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { dataForm, EVENT, eventFor, iq, items, itemsOf, OWNER, publish, PUBSUB } from '../helpers/pubsub.js';
import { makeJid } from '../../src/jid.js';

const MODULES = ['sasl', 'ping', 'disco', 'caps', 'roster', 'presence', 'pubsub'];
const SERVICE = 'pubsub.localhost';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const RSM = 'http://jabber.org/protocol/rsm';

const ok = (el: Element) => el.attrs.type === 'result';
const entry = (text: string) => xml('entry', { xmlns: 'urn:example:news' }, text);
const pubsubSet = (c: TestClient, ns: string, ...children: (Element | null)[]) => iq(c, 'set', xml('pubsub', { xmlns: ns }, ...children), SERVICE);
const ownerGet = (c: TestClient, child: Element) => iq(c, 'get', xml('pubsub', { xmlns: OWNER }, child), SERVICE);
const disco = (c: TestClient, ns: string, to: string, node?: string) => iq(c, 'get', xml('query', { xmlns: ns, node }), to);
/** An event message from the service with `<name node=.../>` in it (purge, delete). */
const nodeEvent = (name: string, node: string) => (el: Element) =>
  el.name === 'message' && el.attrs.from === SERVICE && el.getChild('event', EVENT)?.getChild(name)?.attrs.node === node;
const affiliationsOf = (el: Element, ns: string) =>
  el
    .getChild('pubsub', ns)
    ?.getChild('affiliations')
    ?.getChildren('affiliation')
    .map((a) => `${a.attrs.jid ?? a.attrs.node}=${a.attrs.affiliation}`) ?? [];

async function scenario(t: Test, overrides: Record<string, unknown>): Promise<void> {
  const ts = await startTestServer(t, { ...overrides, modules_enabled: MODULES });
  for (const u of ['alice', 'bob', 'carol']) await ts.addUser(u);
  const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((u) => connect(ts, u)));
  t.teardown(() => Promise.all([alice!.stop(), bob!.stop(), carol!.stop()]));
  const a = alice!;
  const b = bob!;
  const c = carol!;

  t.test('disco: the host lists the service; the service is pubsub/service with what it does', async (t) => {
    const hostItems = await disco(a, DISCO_ITEMS, 'localhost');
    t.ok(
      hostItems
        .getChild('query')!
        .getChildren('item')
        .some((i) => i.attrs.jid === SERVICE),
      'listed on the host',
    );
    const info = (await disco(a, DISCO_INFO, SERVICE)).getChild('query')!;
    t.ok(
      info.getChildren('identity').some((i) => i.attrs.category === 'pubsub' && i.attrs.type === 'service'),
      'pubsub/service',
    );
    const features = info.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['create-nodes', 'instant-nodes', 'subscribe', 'purge-nodes', 'access-open']) t.ok(features.includes(`${PUBSUB}#${f}`), f);
    t.notOk(features.includes(`${PUBSUB}#access-presence`), 'no PEP-only feature');
  });

  t.test('create with configuration, and an instant node', async (t) => {
    const configure = xml('configure', {}, dataForm(`${PUBSUB}#node_config`, { 'pubsub#title': 'News', 'pubsub#max_items': '5' }));
    t.ok(ok(await pubsubSet(a, PUBSUB, xml('create', { node: 'news' }), configure)), 'news created');
    t.equal(errorCondition(await pubsubSet(b, PUBSUB, xml('create', { node: 'news' }))), 'conflict', 'a second create conflicts');
    const instant = await pubsubSet(a, PUBSUB, xml('create', {}));
    t.ok(instant.getChild('pubsub', PUBSUB)?.getChild('create')?.attrs.node, 'the instant node is named in the answer');
    const form = await ownerGet(a, xml('configure', { node: 'news' }));
    const fields = form.getChild('pubsub', OWNER)!.getChild('configure')!.getChild('x')!.getChildren('field');
    t.equal(fields.find((f) => f.attrs.var === 'pubsub#access_model')?.getChildText('value'), 'open', 'open by default');
    t.equal(fields.find((f) => f.attrs.var === 'pubsub#title')?.getChildText('value'), 'News');
    t.equal(errorCondition(await ownerGet(b, xml('configure', { node: 'news' }))), 'forbidden', 'only owners configure');
  });

  t.test('subscribe; publish notifies subscribers; items by id and max_items; retract notifies', async (t) => {
    const sub = await pubsubSet(b, PUBSUB, xml('subscribe', { node: 'news', jid: b.jid }));
    t.equal(sub.getChild('pubsub', PUBSUB)?.getChild('subscription')?.attrs.subscription, 'subscribed');
    t.ok(ok(await publish(a, 'news', entry('first'), { id: 'one', to: SERVICE })), 'published');
    const event = await b.next(eventFor(SERVICE, 'news'));
    t.equal(event.attrs.type, 'headline');
    t.equal(event.getChild('event', EVENT)!.getChild('items')!.getChild('item')!.attrs.id, 'one');
    await publish(a, 'news', entry('second'), { id: 'two', to: SERVICE });
    await b.next((el) => eventFor(SERVICE, 'news')(el) && el.getChild('event', EVENT)!.getChild('items')!.getChild('item')?.attrs.id === 'two');

    t.same(
      itemsOf(await items(c, SERVICE, 'news')).map((i) => i.attrs.id),
      ['one', 'two'],
      'anyone reads an open node',
    );
    t.same(
      itemsOf(await items(c, SERVICE, 'news', { max_items: '1' })).map((i) => i.attrs.id),
      ['two'],
      'max_items',
    );
    t.same(
      itemsOf(await items(c, SERVICE, 'news', {}, ['one'])).map((i) => i.getChild('entry')?.text()),
      ['first'],
      'by id',
    );

    t.ok(ok(await pubsubSet(a, PUBSUB, xml('retract', { node: 'news', notify: 'true' }, xml('item', { id: 'one' })))), 'retracted');
    const retract = await b.next((el) => el.attrs.from === SERVICE && el.getChild('event', EVENT)?.getChild('items')?.getChild('retract')?.attrs.id === 'one');
    t.ok(retract, 'the subscriber hears of it');

    const subs = await iq(b, 'get', xml('pubsub', { xmlns: PUBSUB }, xml('subscriptions', {})), SERVICE);
    t.same(
      subs
        .getChild('pubsub', PUBSUB)!
        .getChild('subscriptions')!
        .getChildren('subscription')
        .map((s) => s.attrs.node),
      ['news'],
      "bob's subscriptions",
    );
  });

  t.test('affiliations: owners add publishers; others may not publish; a node keeps an owner', async (t) => {
    t.equal(errorCondition(await publish(c, 'news', entry('spam'), { to: SERVICE })), 'forbidden', 'carol may not publish to news');
    const mine = await iq(a, 'get', xml('pubsub', { xmlns: PUBSUB }, xml('affiliations', { node: 'news' })), SERVICE);
    t.same(affiliationsOf(mine, PUBSUB), ['news=owner'], "alice's affiliation");
    const set = xml('affiliations', { node: 'news' }, xml('affiliation', { jid: 'carol@localhost', affiliation: 'publisher' }));
    t.ok(ok(await pubsubSet(a, OWNER, set)), 'carol made a publisher');
    t.same(affiliationsOf(await ownerGet(a, xml('affiliations', { node: 'news' })), OWNER), ['alice@localhost=owner', 'carol@localhost=publisher']);
    t.ok(ok(await publish(c, 'news', entry('by carol'), { id: 'three', to: SERVICE })), 'carol publishes now');
    const orphan = xml('affiliations', { node: 'news' }, xml('affiliation', { jid: 'alice@localhost', affiliation: 'none' }));
    t.equal(errorCondition(await pubsubSet(a, OWNER, orphan)), 'not-acceptable', 'the last owner stays');
  });

  t.test('publish to a new node creates it, owned by the publisher', async (t) => {
    t.ok(ok(await publish(c, 'carols', entry('hello'), { id: 'h', to: SERVICE })), 'auto-created');
    const mine = await iq(c, 'get', xml('pubsub', { xmlns: PUBSUB }, xml('affiliations', {})), SERVICE);
    t.same(affiliationsOf(mine, PUBSUB), ['carols=owner', 'news=publisher']);
  });

  t.test('disco#items lists the nodes; disco#info of a node', async (t) => {
    const nodes = (await disco(b, DISCO_ITEMS, SERVICE)).getChild('query')!.getChildren('item');
    t.ok(
      nodes.some((n) => n.attrs.node === 'news' && n.attrs.name === 'News' && n.attrs.jid === SERVICE),
      'news listed',
    );
    const info = (await disco(b, DISCO_INFO, SERVICE, 'news')).getChild('query')!;
    t.equal(info.getChild('identity')?.attrs.type, 'leaf');
    t.equal(errorCondition(await disco(b, DISCO_INFO, SERVICE, 'nope')), 'item-not-found');
  });

  t.test('purge and delete notify subscribers', async (t) => {
    t.ok(ok(await pubsubSet(a, OWNER, xml('purge', { node: 'news' }))), 'purged');
    await b.next(nodeEvent('purge', 'news'));
    t.same(itemsOf(await items(b, SERVICE, 'news')), [], 'no items left');
    t.equal(errorCondition(await pubsubSet(b, OWNER, xml('delete', { node: 'news' }))), 'forbidden', 'only owners delete');
    t.ok(ok(await pubsubSet(a, OWNER, xml('delete', { node: 'news' }))), 'deleted');
    await b.next(nodeEvent('delete', 'news'));
    t.equal(errorCondition(await items(b, SERVICE, 'news')), 'item-not-found', 'gone');
  });

  t.test('result set management pages the items; the owner manages subscriptions', async (t) => {
    for (let i = 1; i <= 5; i++) t.ok(ok(await publish(a, 'pages', entry(`p${i}`), { id: `p${i}`, to: SERVICE })));
    const page = async (set: Element) => {
      const answer = await iq(b, 'get', xml('pubsub', { xmlns: PUBSUB }, xml('items', { node: 'pages' }), set), SERVICE);
      const rsm = answer.getChild('pubsub')?.getChild('set', RSM);
      return {
        ids: itemsOf(answer).map((i) => i.attrs.id),
        first: rsm?.getChild('first')?.attrs.index,
        last: rsm?.getChildText('last'),
        count: rsm?.getChildText('count'),
        error: errorCondition(answer),
      };
    };
    const rsm = (...children: Element[]) => xml('set', { xmlns: RSM }, ...children);
    t.match(await page(rsm(xml('max', {}, '2'))), { ids: ['p1', 'p2'], first: '0', last: 'p2', count: '5' }, 'the first page');
    t.match(await page(rsm(xml('max', {}, '2'), xml('after', {}, 'p2'))), { ids: ['p3', 'p4'], first: '2', count: '5' }, 'the next one');
    t.match(await page(rsm(xml('max', {}, '2'), xml('before'))), { ids: ['p4', 'p5'], first: '3' }, 'the last page');
    t.match(await page(rsm(xml('max', {}, '2'), xml('before', {}, 'p4'))), { ids: ['p2', 'p3'], first: '1' }, 'the page before');
    t.match(await page(rsm(xml('after', {}, 'nope'))), { error: 'item-not-found' }, 'an unknown id');

    const subscribe = (state: string) => xml('subscriptions', { node: 'pages' }, xml('subscription', { jid: 'bob@localhost', subscription: state }));
    t.equal(errorCondition(await pubsubSet(b, OWNER, subscribe('subscribed'))), 'forbidden', 'only an owner manages subscriptions');
    t.ok(ok(await pubsubSet(a, OWNER, subscribe('subscribed'))), 'the owner subscribes bob');
    const listed = await ownerGet(a, xml('subscriptions', { node: 'pages' }));
    t.same(
      listed
        .getChild('pubsub', OWNER)!
        .getChild('subscriptions')!
        .getChildren('subscription')
        .map((x) => x.attrs.jid),
      ['bob@localhost'],
      'listed',
    );
    await publish(a, 'pages', entry('p6'), { id: 'p6', to: SERVICE });
    t.ok(await b.next(eventFor(SERVICE, 'pages')), 'bob gets the next item');
    t.ok(ok(await pubsubSet(a, OWNER, subscribe('none'))), 'and is unsubscribed by the owner');
    const after = await ownerGet(a, xml('subscriptions', { node: 'pages' }));
    t.equal(after.getChild('pubsub', OWNER)!.getChild('subscriptions')!.getChildren('subscription').length, 0, 'no subscription left');
    t.equal(errorCondition(await pubsubSet(a, OWNER, subscribe('pending'))), 'bad-request', 'other states are refused');
  });

  t.test("a node outlives its creator's account", async (t) => {
    await ts.server.core.accounts.delete(makeJid('carol', 'localhost'));
    t.same(
      itemsOf(await items(a, SERVICE, 'carols')).map((i) => i.attrs.id),
      ['h'],
      'carols is still there',
    );
  });

  t.test('node_creation = "admins": only the host admins create nodes', async (t) => {
    // A server of its own (on PostgreSQL the same schema: new accounts, new node names).
    const strict = await startTestServer(t, { ...overrides, modules_enabled: MODULES, admins: ['dave@localhost'], modules: { pubsub: { node_creation: 'admins' } } });
    for (const u of ['dave', 'erin']) await strict.addUser(u);
    const [boss, user] = await Promise.all([connect(strict, 'dave'), connect(strict, 'erin')]);
    t.teardown(() => Promise.all([boss.stop(), user.stop()]));
    t.equal(errorCondition(await pubsubSet(user, PUBSUB, xml('create', { node: 'by-erin' }))), 'forbidden', 'erin may not create');
    t.equal(errorCondition(await publish(user, 'by-erin', entry('x'), { to: SERVICE })), 'item-not-found', 'nor auto-create');
    t.ok(ok(await pubsubSet(boss, PUBSUB, xml('create', { node: 'by-dave' }))), 'dave, an admin, may');
    const handOver = xml('affiliations', { node: 'by-dave' }, xml('affiliation', { jid: 'erin@localhost', affiliation: 'owner' }));
    t.ok(ok(await pubsubSet(boss, OWNER, handOver)), 'erin made an owner');
    const dropDave = xml('affiliations', { node: 'by-dave' }, xml('affiliation', { jid: 'dave@localhost', affiliation: 'none' }));
    t.ok(ok(await pubsubSet(user, OWNER, dropDave)), 'erin removes dave');
    t.ok(ok(await ownerGet(boss, xml('configure', { node: 'by-dave' }))), 'an admin still owns every node');
  });
}

t.test('sqlite', (t) => scenario(t, {}));
t.test('postgres', (t) => onPostgres(t, 'starling_pubsub_service', (overrides) => scenario(t, overrides)));
