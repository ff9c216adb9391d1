// XEP-0045 affiliations and roles over real sockets: kick (307), ban (301), voice, moderators,
// members, admins and owners through the admin IQs, with the permission rules of §5 and the
// lists hidden from those who may not see them; 321 and 322 removals; who sees real JIDs.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import {
  MUC_ADMIN,
  SERVICE,
  admin,
  condition,
  configure,
  createInstant,
  createRoom,
  groupchat,
  groupchatWith,
  iq,
  itemOf,
  join,
  list,
  openRoom,
  presenceFrom,
  startMucServer,
  statusCodes,
  users,
  xml,
} from './muc-helpers.js';

const listJids = (el: Element) =>
  el
    .getChild('query', MUC_ADMIN)!
    .getChildren('item')
    .map((i) => i.attrs.jid);
const listNicks = (el: Element) =>
  el
    .getChild('query', MUC_ADMIN)!
    .getChildren('item')
    .map((i) => i.attrs.nick);

t.test('kicking and banning', async (t) => {
  const {
    room,
    clients: [alice, bob, carol],
  } = await openRoom(t, 'court', ['alice', 'bob', 'carol']);

  t.equal(condition(await admin(bob, room, [{ nick: 'Carol', role: 'none' }])), 'forbidden', 'a participant may not kick');
  t.equal(condition(await admin(alice, room, [{ nick: 'Nobody', role: 'none' }])), 'item-not-found', 'kicking a nick nobody has');
  t.equal(condition(await admin(alice, room, [{ nick: 'Bob', role: 'none', affiliation: 'none' }])), 'bad-request', 'a role and an affiliation at once');

  const kicked = await admin(alice, room, [{ nick: 'Bob', role: 'none' }], 'Be nice');
  t.equal(kicked.attrs.type, 'result');
  const bobSees = await bob.next(presenceFrom(`${room}/Bob`, 'unavailable'));
  t.same(statusCodes(bobSees).sort(), [110, 307], 'the kicked occupant: 307 and 110');
  const item = bobSees.getChild('x', 'http://jabber.org/protocol/muc#user')!.getChild('item')!;
  t.equal(item.attrs.role, 'none');
  t.equal(item.getChild('actor')?.attrs.nick, 'Alice', 'who kicked');
  t.equal(item.getChildText('reason'), 'Be nice', 'why');
  const carolSees = await carol.next(presenceFrom(`${room}/Bob`, 'unavailable'));
  t.same(statusCodes(carolSees), [307], 'the others: 307');
  t.ok((await join(bob, room, 'Bob')).self.attrs.type === undefined, 'a kicked user may come back');

  const banned = await admin(alice, room, [{ jid: 'bob@localhost', affiliation: 'outcast' }], 'Spam');
  t.equal(banned.attrs.type, 'result');
  const out = await bob.next((el) => presenceFrom(`${room}/Bob`, 'unavailable')(el) && statusCodes(el).includes(301));
  t.same(statusCodes(out).sort(), [110, 301], 'the banned occupant: 301');
  t.equal(itemOf(out).affiliation, 'outcast');
  t.same(statusCodes(await carol.next((el) => presenceFrom(`${room}/Bob`, 'unavailable')(el) && statusCodes(el).includes(301))), [301]);
  t.equal(condition((await join(bob, room, 'Bob')).self), 'forbidden', 'a banned user may not enter');
  t.same(listJids(await list(alice, room, { affiliation: 'outcast' })), ['bob@localhost'], 'the ban list');
  t.equal(condition(await list(carol, room, { affiliation: 'outcast' })), 'forbidden', 'hidden from participants');
  await admin(alice, room, [{ jid: 'bob@localhost', affiliation: 'none' }]);
  t.ok((await join(bob, room, 'Bob')).self.attrs.type === undefined, 'unbanned');
});

t.test('voice in a moderated room, and the voice and moderator lists', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob, carol] = await users(t, ts, 'alice', 'bob', 'carol');
  const room = `radio@${SERVICE}`;
  await createRoom(alice, room, 'Alice', { 'muc#roomconfig_moderatedroom': '1' });
  await admin(alice, room, [{ jid: 'bob@localhost', affiliation: 'member' }]);
  t.equal(itemOf((await join(bob, room, 'Bob')).self).role, 'participant', 'members have voice');
  t.equal(itemOf((await join(carol, room, 'Carol')).self).role, 'visitor', 'others are visitors');

  t.equal((await admin(alice, room, [{ nick: 'Carol', role: 'participant' }])).attrs.type, 'result', 'granting voice');
  t.equal(itemOf(await bob.next((el) => presenceFrom(`${room}/Carol`)(el) && itemOf(el).role === 'participant')).role, 'participant', 'everyone sees it');
  await groupchat(carol, room, 'I can speak');
  t.ok(await bob.next(groupchatWith('I can speak')));
  t.same(listNicks(await list(alice, room, { role: 'participant' })).sort(), ['Bob', 'Carol'], 'the voice list');
  t.equal(condition(await list(bob, room, { role: 'participant' })), 'forbidden', 'the voice list is for moderators');

  await admin(alice, room, [{ nick: 'Carol', role: 'visitor' }], 'Quiet');
  await carol.next((el) => presenceFrom(`${room}/Carol`)(el) && itemOf(el).role === 'visitor');
  await carol.send(xml('message', { to: room, type: 'groupchat', id: 'muted' }, xml('body', {}, 'hello?')));
  t.equal(condition(await carol.next((el) => el.attrs.id === 'muted')), 'forbidden', 'voice revoked');

  // Moderators: granted by admins and owners only.
  t.equal(condition(await admin(bob, room, [{ nick: 'Carol', role: 'moderator' }])), 'forbidden', 'a participant may not make moderators');
  t.equal((await admin(alice, room, [{ nick: 'Bob', role: 'moderator' }])).attrs.type, 'result');
  await bob.next((el) => presenceFrom(`${room}/Bob`)(el) && itemOf(el).role === 'moderator');
  t.same(listNicks(await list(alice, room, { role: 'moderator' })).sort(), ['Alice', 'Bob'], 'the moderator list');
  t.equal(condition(await list(bob, room, { role: 'moderator' })), 'forbidden', 'the moderator list is for admins');
  // A moderator who is only a member may not silence the owner, nor kick her.
  t.equal(condition(await admin(bob, room, [{ nick: 'Alice', role: 'visitor' }])), 'not-allowed', "a member-moderator cannot take the owner's voice");
  t.equal(condition(await admin(bob, room, [{ nick: 'Alice', role: 'none' }])), 'not-allowed', 'nor kick her');
  t.equal((await admin(bob, room, [{ nick: 'Carol', role: 'none' }])).attrs.type, 'result', 'but may kick a visitor');
});

t.test('members, admins and owners: who may change what', async (t) => {
  const {
    room,
    clients: [alice, bob, carol, dave],
  } = await openRoom(t, 'guild', ['alice', 'bob', 'carol'], { others: ['dave'] });

  t.equal(condition(await admin(bob, room, [{ jid: 'carol@localhost', affiliation: 'member' }])), 'forbidden', 'participants may not grant membership');
  t.equal((await admin(alice, room, [{ jid: 'bob@localhost', affiliation: 'admin' }])).attrs.type, 'result', 'the owner makes bob admin');
  const promoted = await carol.next((el) => presenceFrom(`${room}/Bob`)(el) && itemOf(el).affiliation === 'admin');
  t.equal(itemOf(promoted).role, 'moderator', 'an admin is a moderator');

  t.equal((await admin(bob, room, [{ jid: 'carol@localhost', affiliation: 'member' }])).attrs.type, 'result', 'an admin grants membership');
  t.equal(itemOf(await carol.next((el) => presenceFrom(`${room}/Carol`)(el) && itemOf(el).affiliation === 'member')).affiliation, 'member');
  t.equal(condition(await admin(bob, room, [{ jid: 'dave@localhost', affiliation: 'admin' }])), 'forbidden', 'an admin may not make admins');
  t.equal(condition(await admin(bob, room, [{ jid: 'alice@localhost', affiliation: 'outcast' }])), 'not-allowed', 'an admin may not ban the owner');
  t.equal(condition(await admin(bob, room, [{ nick: 'Alice', role: 'none' }])), 'not-allowed', 'nor kick her');

  // The member list: admins and owners; others only if the configuration says so.
  t.same(listJids(await list(bob, room, { affiliation: 'member' })), ['carol@localhost'], 'admins read the member list');
  t.equal(condition(await list(carol, room, { affiliation: 'member' })), 'forbidden', 'hidden from members by default');
  await configure(alice, room, { 'muc#roomconfig_getmemberlist': ['moderator', 'participant'] });
  t.same(listJids(await list(carol, room, { affiliation: 'member' })), ['carol@localhost'], 'shown to participants when configured');
  t.equal(condition(await list(carol, room, { affiliation: 'admin' })), 'forbidden', 'the admin list stays hidden');
  t.same(listJids(await list(alice, room, { affiliation: 'admin' })), ['bob@localhost'], 'the admin list');
  t.same(listJids(await list(alice, room, { affiliation: 'owner' })), ['alice@localhost'], 'the owner list');

  // Owners: the last one may not leave the room ownerless.
  t.equal(condition(await admin(alice, room, [{ jid: 'alice@localhost', affiliation: 'admin' }])), 'conflict', 'the only owner stays owner');
  t.equal((await admin(alice, room, [{ jid: 'dave@localhost', affiliation: 'owner' }])).attrs.type, 'result', 'a second owner (not in the room)');
  t.equal((await admin(alice, room, [{ jid: 'alice@localhost', affiliation: 'admin' }])).attrs.type, 'result', 'now alice may step down');
  t.equal(itemOf(await bob.next((el) => presenceFrom(`${room}/Alice`)(el) && itemOf(el).affiliation === 'admin')).role, 'moderator');
  t.equal(condition(await iq(alice, 'get', room, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }))), 'forbidden', 'an admin no longer configures');
  const daveIn = await join(dave, room, 'Dave');
  t.same(itemOf(daveIn.self), { affiliation: 'owner', role: 'moderator', jid: dave.jid }, 'the new owner enters as owner');
});

t.test('321 and 322: removed by affiliation in members-only rooms', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob, carol] = await users(t, ts, 'alice', 'bob', 'carol');
  const room = `closing@${SERVICE}`;
  await createInstant(alice, room, 'Alice');
  await admin(alice, room, [{ jid: 'bob@localhost', affiliation: 'member' }]);
  await join(bob, room, 'Bob');
  await join(carol, room, 'Carol');
  await configure(alice, room, { 'muc#roomconfig_membersonly': '1' });
  const out = await carol.next((el) => presenceFrom(`${room}/Carol`, 'unavailable')(el));
  t.same(statusCodes(out).sort(), [110, 322], 'a non-member leaves when the room becomes members-only (322)');
  t.same(statusCodes(await bob.next(presenceFrom(`${room}/Carol`, 'unavailable'))), [322], 'the others see 322');
  await groupchat(alice, room, 'members only now');
  t.ok(await bob.next(groupchatWith('members only now')), 'the member stays');

  await admin(alice, room, [{ jid: 'bob@localhost', affiliation: 'none' }]);
  const removed = await bob.next(presenceFrom(`${room}/Bob`, 'unavailable'));
  t.same(statusCodes(removed).sort(), [110, 321], 'membership revoked in a members-only room: 321');
});

t.test('semi-anonymous rooms: only moderators see real JIDs', async (t) => {
  const {
    room,
    clients: [alice, bob, carol],
  } = await openRoom(t, 'masks', ['alice', 'bob'], { others: ['carol'] });
  const bobSeenByAlice = await alice.next(presenceFrom(`${room}/Bob`));
  t.equal(itemOf(bobSeenByAlice).jid, bob.jid, 'the moderator sees the real JID');
  await join(carol, room, 'Carol');
  const bobSeenByCarol = await carol.next(presenceFrom(`${room}/Bob`));
  t.equal(itemOf(bobSeenByCarol).jid, undefined, 'a participant does not');
  const carolSeenByBob = await bob.next(presenceFrom(`${room}/Carol`));
  t.equal(itemOf(carolSeenByBob).jid, undefined, 'nor on a new arrival');
  t.equal(itemOf(await alice.next(presenceFrom(`${room}/Carol`))).jid, carol.jid, 'the moderator does, on the same broadcast');
});
