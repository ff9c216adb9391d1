// Modern extras over real sockets: XEP-0421 occupant ids, XEP-0410 self-ping (and IQs
// forwarded between occupants), XEP-0425 moderated retraction, and the hook point for a room
// archive (the room-message event, stanza-ids, status 170, extra room features).
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { connect } from '../helpers/clients.js';
import type { RoomMessageEvent } from '../../modules/muc/index.js';
import { MucKey } from '../../modules/muc/api.js';
import {
  DISCO_INFO,
  OCCUPANT_ID,
  SERVICE,
  condition,
  configure,
  createInstant,
  createRoom,
  groupchat,
  groupchatWith,
  iq,
  join,
  openRoom,
  presenceFrom,
  startMucServer,
  statusCodes,
  users,
  xml,
} from './muc-helpers.js';

const occupantId = (el: Element) => el.getChildren('occupant-id', OCCUPANT_ID).map((o) => o.attrs.id);
const stanzaId = (el: Element) => el.getChild('stanza-id', 'urn:xmpp:sid:0');

t.test('XEP-0421 occupant ids', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const bob2 = await connect(ts, 'bob', { resource: 'other' });
  t.teardown(() => bob2.stop());
  const room = `ids@${SERVICE}`;
  const created = await createInstant(alice, room, 'Alice');
  const aliceId = occupantId(created.self);
  t.equal(aliceId.length, 1, 'one occupant-id on the self-presence');
  const bobIn = await join(bob, room, 'Bob');
  const bobId = occupantId(bobIn.self)[0]!;
  t.not(bobId, aliceId[0], 'another user, another id');
  t.same(occupantId(await alice.next(presenceFrom(`${room}/Bob`))), [bobId], 'the same id in the presence others get');

  await groupchat(bob, room, 'spoof', [xml('occupant-id', { xmlns: OCCUPANT_ID, id: aliceId[0]! })]);
  const message = await alice.next(groupchatWith('spoof'));
  t.same(occupantId(message), [bobId], "a client's own occupant-id is replaced by the room's");

  await bob.send(xml('presence', { to: `${room}/Robert` }));
  const renamed = await alice.next(presenceFrom(`${room}/Robert`));
  t.same(occupantId(renamed), [bobId], 'the id survives a nick change');
  await bob.send(xml('presence', { to: `${room}/Robert`, type: 'unavailable' }));
  await bob.next(presenceFrom(`${room}/Robert`, 'unavailable'));
  const again = await join(bob2, room, 'Bobby');
  t.same(occupantId(again.self), [bobId], 'and leaving and coming back from another client');
  const other = `other@${SERVICE}`;
  const elsewhere = await createInstant(bob, other, 'Bob');
  t.not(occupantId(elsewhere.self)[0], bobId, 'another room, another id');
});

t.test('XEP-0410 self-ping, and IQs forwarded between occupants', async (t) => {
  const {
    room,
    clients: [alice, bob, carol],
  } = await openRoom(t, 'pings', ['alice', 'bob'], {
    others: ['carol'],
    modules: ['sasl', 'ping', 'disco', 'roster', 'presence', 'vcard', 'muc'],
  });
  const ping = () => xml('ping', { xmlns: 'urn:xmpp:ping' });

  const self = await iq(alice, 'get', `${room}/Alice`, ping());
  t.equal(self.attrs.type, 'result', 'a joined client pinging itself: result, answered by the room');
  t.equal(self.attrs.from, `${room}/Alice`);
  const outsider = await iq(carol, 'get', `${room}/Alice`, ping());
  t.equal(condition(outsider), 'not-acceptable', 'not joined: not-acceptable');
  const features = (await iq(alice, 'get', room, xml('query', { xmlns: DISCO_INFO })))
    .getChild('query', DISCO_INFO)!
    .getChildren('feature')
    .map((f) => f.attrs.var);
  t.ok(features.includes('http://jabber.org/protocol/muc#self-ping-optimization'), 'advertised');

  // To another occupant: forwarded, from the asker's occupant JID; the answer comes back.
  const id = 'fwd1';
  await alice.send(xml('iq', { type: 'get', id, to: `${room}/Bob` }, xml('query', { xmlns: 'jabber:iq:version' })));
  const forwarded = await bob.next((el) => el.name === 'iq' && el.attrs.type === 'get' && !!el.getChild('query', 'jabber:iq:version'));
  t.equal(forwarded.attrs.from, `${room}/Alice`, "bob sees alice's occupant JID, not her real one");
  await bob.send(xml('iq', { type: 'result', id: forwarded.attrs.id, to: forwarded.attrs.from }, xml('query', { xmlns: 'jabber:iq:version' }, xml('name', {}, 'BobClient'))));
  const answer = await alice.next((el) => el.name === 'iq' && el.attrs.id === id);
  t.equal(answer.attrs.type, 'result');
  t.equal(answer.attrs.from, `${room}/Bob`);
  t.equal(answer.getChild('query', 'jabber:iq:version')?.getChildText('name'), 'BobClient', 'the answer comes back to the asker');

  // vCards (avatars) of occupants: the request goes to the user's account, which the server answers.
  const set = await iq(bob, 'set', 'bob@localhost', xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Bob Builder')));
  t.equal(set.attrs.type, 'result');
  const card = await iq(alice, 'get', `${room}/Bob`, xml('vCard', { xmlns: 'vcard-temp' }));
  t.equal(card.attrs.type, 'result');
  t.equal(card.attrs.from, `${room}/Bob`, 'from the occupant JID');
  t.equal(card.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Bob Builder', "the occupant's vCard, through the room");
});

t.test('XEP-0425 moderated retraction', async (t) => {
  const {
    room,
    clients: [alice, bob, carol],
  } = await openRoom(t, 'moderated', ['alice', 'bob'], { others: ['carol'] });
  await groupchat(bob, room, 'spam spam spam');
  const spam = await alice.next(groupchatWith('spam spam spam'));
  const id = stanzaId(spam)!.attrs.id!;
  t.equal(stanzaId(spam)!.attrs.by, room, 'the room gives messages a stanza id');
  await groupchat(bob, room, 'a fine message');
  await alice.next(groupchatWith('a fine message'));

  const moderate = (c: typeof alice, target: string) =>
    iq(c, 'set', room, xml('moderate', { xmlns: 'urn:xmpp:message-moderate:1', id: target }, xml('retract', { xmlns: 'urn:xmpp:message-retract:1' }), xml('reason', {}, 'Spam')));
  t.equal(condition(await moderate(bob, id)), 'forbidden', 'only moderators moderate');
  t.equal(condition(await moderate(alice, 'nope')), 'item-not-found', 'an unknown message');
  t.equal((await moderate(alice, id)).attrs.type, 'result', 'the moderator retracts it');
  for (const c of [alice, bob]) {
    const retraction = await c.next((el) => el.name === 'message' && !!el.getChild('retract', 'urn:xmpp:message-retract:1'));
    t.equal(retraction.attrs.from, room, 'from the room');
    const retract = retraction.getChild('retract', 'urn:xmpp:message-retract:1')!;
    t.equal(retract.attrs.id, id, 'naming the stanza id');
    const moderated = retract.getChild('moderated', 'urn:xmpp:message-moderate:1')!;
    t.equal(moderated.attrs.by, `${room}/Alice`, 'by the moderator');
    t.ok(moderated.getChild('occupant-id', OCCUPANT_ID), "with the moderator's occupant id");
    t.equal(retract.getChildText('reason'), 'Spam');
  }
  // Carol's history is in her inbox once the join sequence (its subject) is over.
  await join(carol, room, 'Carol');
  const bodies: (string | null)[] = [];
  for (;;) {
    const el = await carol.next((e) => e.name === 'message' && !!e.getChild('body'), 100).catch(() => undefined);
    if (!el) break;
    bodies.push(el.getChildText('body'));
  }
  t.notOk(bodies.includes('spam spam spam'), 'gone from the history');
  t.ok(bodies.includes('a fine message'), 'the rest stays');
});

t.test('the archive hook point: room-message event, stanza ids, status 170, room features', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const api = ts.server.core.hosts.get('localhost')!.service(MucKey)!;
  t.equal(api.domain, SERVICE);
  const events: RoomMessageEvent[] = [];
  const archived: RoomMessageEvent[] = [];
  const undoListener = api.onRoomMessage((e) => void events.push(e));
  const undoArchive = api.setArchive({ store: (e) => void archived.push(e) });
  const undoFeature = api.addRoomFeature('urn:xmpp:mam:2');
  t.teardown(() => (undoListener(), undoArchive(), undoFeature()));

  const room = `logged@${SERVICE}`;
  await createRoom(alice, room, 'Alice', { 'muc#roomconfig_enablelogging': '1' });
  const bobIn = await join(bob, room, 'Bob');
  t.ok(statusCodes(bobIn.self).includes(170), 'a logged room says so on entering (170)');
  const features = (await iq(bob, 'get', room, xml('query', { xmlns: DISCO_INFO })))
    .getChild('query', DISCO_INFO)!
    .getChildren('feature')
    .map((f) => f.attrs.var);
  t.ok(features.includes('urn:xmpp:mam:2'), 'a feature another module added to rooms');

  await groupchat(bob, room, 'for the record');
  const wire = await alice.next(groupchatWith('for the record'));
  t.equal(events.length, 1, 'listeners get the message');
  t.equal(archived.length, 1, 'the archive stores it');
  const e = archived[0]!;
  t.equal(e.room.toString(), room);
  t.equal(e.nick, 'Bob');
  t.equal(e.sender.toString(), 'bob@localhost', 'with the real sender');
  t.equal(e.stanzaId, stanzaId(wire)!.attrs.id, 'the stanza id on the wire is the archive id');
  t.equal(e.stanza.getChildText('body'), 'for the record');
  t.equal(e.stanza.attrs.to, undefined, 'the message as broadcast, without a to');

  await configure(alice, room, { 'muc#roomconfig_enablelogging': '0' });
  const off = await bob.next((el) => el.name === 'message' && el.attrs.from === room && statusCodes(el).length > 0);
  t.same(statusCodes(off).sort(), [104, 171], 'logging off: 171');
  await groupchat(bob, room, 'off the record');
  await alice.next(groupchatWith('off the record'));
  t.equal(events.length, 2, 'listeners get every message');
  t.equal(archived.length, 1, 'the archive only what the room logs');
});
