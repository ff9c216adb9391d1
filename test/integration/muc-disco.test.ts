// XEP-0045 §6 discovery over real sockets: the service among the host's items, its identity
// and features, the public rooms, a room's identity, features and muc#roominfo form (with the
// occupant count), its occupants (to occupants only), a user's reserved nick; the domain option.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { DISCO_INFO, DISCO_ITEMS, SERVICE, admin, condition, createInstant, createRoom, iq, join, startMucServer, users, xml } from './muc-helpers.js';

const features = (el: Element) =>
  el
    .getChild('query', DISCO_INFO)!
    .getChildren('feature')
    .map((f) => f.attrs.var);
const items = (el: Element) =>
  el
    .getChild('query', DISCO_ITEMS)!
    .getChildren('item')
    .map((i) => i.attrs);
const infoField = (el: Element, name: string) =>
  el
    .getChild('query', DISCO_INFO)!
    .getChildren('x', 'jabber:x:data')
    .flatMap((x) => x.getChildren('field'))
    .find((f) => f.attrs.var === name)
    ?.getChildText('value');

t.test('the service and its rooms in disco', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');

  const hostItems = await iq(alice, 'get', 'localhost', xml('query', { xmlns: DISCO_ITEMS }));
  t.match(items(hostItems), [{ jid: SERVICE, name: 'Chatrooms' }], "the service is among the host's items");
  const serviceInfo = await iq(alice, 'get', SERVICE, xml('query', { xmlns: DISCO_INFO }));
  t.match(serviceInfo.getChild('query', DISCO_INFO)!.getChild('identity')!.attrs, { category: 'conference', type: 'text', name: 'Chatrooms' });
  t.ok(features(serviceInfo).includes('http://jabber.org/protocol/muc'), 'the MUC feature');

  await createRoom(alice, `public@${SERVICE}`, 'Alice', { 'muc#roomconfig_roomname': 'A Public Room' });
  await createRoom(alice, `hidden@${SERVICE}`, 'Alice', { 'muc#roomconfig_publicroom': '0' });
  await join(alice, `locked@${SERVICE}`, 'Alice'); // not configured yet
  const rooms = await iq(bob, 'get', SERVICE, xml('query', { xmlns: DISCO_ITEMS }));
  t.same(items(rooms), [{ jid: `public@${SERVICE}`, name: 'A Public Room' }], 'public rooms only: not hidden ones, not locked ones');

  const room = `public@${SERVICE}`;
  const before = await iq(bob, 'get', room, xml('query', { xmlns: DISCO_INFO }));
  t.match(before.getChild('query', DISCO_INFO)!.getChild('identity')!.attrs, { category: 'conference', type: 'text', name: 'A Public Room' });
  const f = features(before);
  for (const name of [
    'http://jabber.org/protocol/muc',
    'muc_public',
    'muc_temporary',
    'muc_open',
    'muc_unmoderated',
    'muc_unsecured',
    'muc_semianonymous',
    'urn:xmpp:occupant-id:0',
    'http://jabber.org/protocol/muc#self-ping-optimization',
  ]) {
    t.ok(f.includes(name), `room feature ${name}`);
  }
  t.equal(infoField(before, 'FORM_TYPE'), 'http://jabber.org/protocol/muc#roominfo', 'the muc#roominfo form');
  t.equal(infoField(before, 'muc#roominfo_occupants'), '1', 'with the occupant count');
  await join(bob, room, 'Bob');
  const after = await iq(bob, 'get', room, xml('query', { xmlns: DISCO_INFO }));
  t.equal(infoField(after, 'muc#roominfo_occupants'), '2', 'which follows the room');

  const hiddenInfo = await iq(bob, 'get', `hidden@${SERVICE}`, xml('query', { xmlns: DISCO_INFO }));
  t.ok(features(hiddenInfo).includes('muc_hidden'), 'a hidden room says so');

  await createRoom(alice, `strict@${SERVICE}`, 'Alice', {
    'muc#roomconfig_persistentroom': '1',
    'muc#roomconfig_membersonly': '1',
    'muc#roomconfig_moderatedroom': '1',
    'muc#roomconfig_passwordprotectedroom': '1',
    'muc#roomconfig_roomsecret': 'x',
    'muc#roomconfig_whois': 'anyone',
    'muc#roomconfig_roomdesc': 'Strict rules',
    'muc#roomconfig_lang': 'fr',
  });
  const strict = await iq(bob, 'get', `strict@${SERVICE}`, xml('query', { xmlns: DISCO_INFO }));
  for (const name of ['muc_persistent', 'muc_membersonly', 'muc_moderated', 'muc_passwordprotected', 'muc_nonanonymous'])
    t.ok(features(strict).includes(name), `room feature ${name}`);
  t.equal(infoField(strict, 'muc#roominfo_description'), 'Strict rules');
  t.equal(infoField(strict, 'muc#roominfo_lang'), 'fr');

  // Occupants, to occupants only.
  const inside = await iq(bob, 'get', room, xml('query', { xmlns: DISCO_ITEMS }));
  t.same(
    items(inside)
      .map((i) => i.jid)
      .sort(),
    [`${room}/Alice`, `${room}/Bob`],
    'an occupant sees who is there',
  );
  const [carol] = await users(t, ts, 'carol');
  const outside = await iq(carol!, 'get', room, xml('query', { xmlns: DISCO_ITEMS }));
  t.same(items(outside), [], 'an outsider does not');
  t.equal(condition(await iq(carol!, 'get', `nothing@${SERVICE}`, xml('query', { xmlns: DISCO_INFO }))), 'item-not-found', 'no such room');

  // §7.10: the reserved nick.
  await admin(alice, `strict@${SERVICE}`, [{ jid: 'carol@localhost', affiliation: 'member', nick: 'Caro' }]);
  const reserved = await iq(carol!, 'get', `strict@${SERVICE}`, xml('query', { xmlns: DISCO_INFO, node: 'x-roomuser-item' }));
  t.equal(reserved.getChild('query', DISCO_INFO)!.getChild('identity')?.attrs.name, 'Caro', "a member's reserved nick");
});

t.test('the service domain is an option (per host)', async (t) => {
  const ts = await startMucServer(t, { modules: { muc: { domain: 'rooms.{host}', name: 'Rooms' } } });
  const [alice] = await users(t, ts, 'alice');
  const hostItems = await iq(alice, 'get', 'localhost', xml('query', { xmlns: DISCO_ITEMS }));
  t.match(items(hostItems), [{ jid: 'rooms.localhost', name: 'Rooms' }]);
  const created = await createInstant(alice, 'lobby@rooms.localhost', 'Alice');
  t.equal(created.self.attrs.from, 'lobby@rooms.localhost/Alice', 'rooms live on that domain');
  const unique = await iq(alice, 'get', 'rooms.localhost', xml('unique', { xmlns: 'http://jabber.org/protocol/muc#unique' }));
  t.match(unique.getChildText('unique'), /^[0-9a-f]{20}$/, 'a unique room name (§10.1.4)');
  const nothing = await iq(alice, 'get', SERVICE, xml('query', { xmlns: DISCO_INFO }));
  t.equal(nothing.attrs.type, 'error', 'conference.localhost is not served');
});
