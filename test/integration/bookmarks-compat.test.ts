// Bookmarks conversion (XEP-0402 §5.3): a client on XEP-0048 bookmarks in private XML storage
// and a client on Bookmarks 2 (PEP) see the same bookmarks, each written the other's way, with
// Bookmarks 2 clients notified of what a legacy client changed.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer } from '../helpers/harness.js';
import { xml } from '../helpers/clients.js';
import { connectWithCaps, eventFor, iq, items, itemsOf, publish, PUBSUB } from '../helpers/pubsub.js';

const MODULES = ['sasl', 'ping', 'disco', 'caps', 'roster', 'presence', 'private', 'pubsub', 'bookmarks'];
const BOOKMARKS = 'urn:xmpp:bookmarks:1';
const ALICE = 'alice@localhost';
const ROOM1 = 'one@conference.localhost';
const ROOM2 = 'two@conference.localhost';
const ROOM3 = 'three@conference.localhost';

const legacyStorage = (...conferences: Element[]) => xml('storage', { xmlns: 'storage:bookmarks' }, ...conferences);
const legacy = (jid: string, name: string, autojoin: string, nick?: string) => xml('conference', { jid, name, autojoin }, ...(nick ? [xml('nick', {}, nick)] : []));
const privateSet = (storage: Element) => xml('query', { xmlns: 'jabber:iq:private' }, storage);
const privateGet = () => xml('query', { xmlns: 'jabber:iq:private' }, xml('storage', { xmlns: 'storage:bookmarks' }));
const conferencesIn = (answer: Element) =>
  answer
    .getChild('query', 'jabber:iq:private')!
    .getChild('storage', 'storage:bookmarks')!
    .getChildren('conference')
    .map((c) => ({ jid: c.attrs.jid, autojoin: c.attrs.autojoin, name: c.attrs.name, nick: c.getChildText('nick') ?? undefined }));

t.test('bookmarks written either way are seen the other way', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  await ts.addUser('alice');
  const modern = await connectWithCaps(ts, 'alice', [`${BOOKMARKS}+notify`], { resource: 'modern' });
  const old = await connectWithCaps(ts, 'alice', [], { resource: 'old' });
  t.teardown(() => Promise.all([modern.stop(), old.stop()]));

  const info = await iq(modern, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), ALICE);
  t.ok(
    info
      .getChild('query')!
      .getChildren('feature')
      .some((f) => f.attrs.var === `${BOOKMARKS}#compat`),
    'the account advertises urn:xmpp:bookmarks:1#compat',
  );

  t.equal(
    (await iq(old, 'set', privateSet(legacyStorage(legacy(ROOM1, 'One', 'true', 'al'), legacy(ROOM2, 'Two', 'false'))))).attrs.type,
    'result',
    'a legacy client stores two bookmarks',
  );
  const told = await modern.next(eventFor(ALICE, BOOKMARKS));
  t.equal(told.getChild('event')!.getChild('items')!.getChild('item')!.attrs.id, ROOM1, 'the Bookmarks 2 client is notified');
  const pep = itemsOf(await items(modern, undefined, BOOKMARKS));
  t.same(
    pep.map((i) => ({ id: i.attrs.id, ...i.getChild('conference', BOOKMARKS)!.attrs, nick: i.getChild('conference')!.getChildText('nick') ?? undefined })),
    [
      { id: ROOM1, xmlns: BOOKMARKS, name: 'One', autojoin: 'true', nick: 'al' },
      { id: ROOM2, xmlns: BOOKMARKS, name: 'Two', autojoin: 'false', nick: undefined },
    ],
    'and reads them from PEP, converted',
  );

  const published = await publish(modern, BOOKMARKS, xml('conference', { xmlns: BOOKMARKS, name: 'Three', autojoin: 'true' }, xml('nick', {}, 'ally')), {
    id: ROOM3,
    publishOptions: { 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never', 'pubsub#access_model': 'whitelist' },
  });
  t.equal(published.attrs.type, 'result', 'the Bookmarks 2 client adds one, with the node options of XEP-0402');
  t.same(
    conferencesIn(await iq(old, 'get', privateGet())),
    [
      { jid: ROOM1, autojoin: 'true', name: 'One', nick: 'al' },
      { jid: ROOM2, autojoin: 'false', name: 'Two', nick: undefined },
      { jid: ROOM3, autojoin: 'true', name: 'Three', nick: 'ally' },
    ],
    'the legacy client sees all three',
  );

  const retracted = await iq(modern, 'set', xml('pubsub', { xmlns: PUBSUB }, xml('retract', { node: BOOKMARKS, notify: 'true' }, xml('item', { id: ROOM2 }))));
  t.equal(retracted.attrs.type, 'result');
  t.same(
    conferencesIn(await iq(old, 'get', privateGet())).map((c) => c.jid),
    [ROOM1, ROOM3],
    'a bookmark removed in PEP is gone from private storage',
  );

  await iq(old, 'set', privateSet(legacyStorage(legacy(ROOM3, 'Three renamed', 'true', 'ally'))));
  const retraction = await modern.next((el) => eventFor(ALICE, BOOKMARKS)(el) && el.getChild('event')!.getChild('items')!.getChild('retract')?.attrs.id === ROOM1);
  t.ok(retraction, 'a bookmark the legacy client dropped is retracted, and Bookmarks 2 clients are told');
  const after = itemsOf(await items(modern, undefined, BOOKMARKS));
  t.same(
    after.map((i) => [i.attrs.id, i.getChild('conference')!.attrs.name]),
    [[ROOM3, 'Three renamed']],
    'and the renamed one is updated',
  );
});
