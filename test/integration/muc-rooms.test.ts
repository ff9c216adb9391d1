// XEP-0045 rooms over real sockets: instant and reserved creation (§10.1), the locked-room
// rules (201), the muc#roomconfig form and its effects (§10.2), destruction with an alternate
// venue (§10.9), temporary rooms vanishing when empty.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import {
  DATA,
  DISCO_INFO,
  MUC_OWNER,
  MUC_USER,
  SERVICE,
  condition,
  configure,
  groupchat,
  groupchatWith,
  iq,
  isSelfPresence,
  itemOf,
  join,
  openRoom,
  presenceFrom,
  startMucServer,
  statusCodes,
  users,
  xml,
} from './muc-helpers.js';

const fieldValue = (form: Element, name: string) =>
  form
    .getChildren('field')
    .find((f) => f.attrs.var === name)
    ?.getChildren('value')
    .map((v) => v.getText());

t.test('an instant room: created locked with 201, opened by accepting the defaults', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `instant@${SERVICE}`;

  const { self, subject } = await join(alice, room, 'Alice');
  t.same(statusCodes(self).sort(), [110, 201], 'self-presence with 110 and 201 (created)');
  t.same(itemOf(self), { affiliation: 'owner', role: 'moderator', jid: alice.jid }, 'the creator is owner and moderator');
  t.ok(subject, 'the join sequence ends with the (empty) subject');
  t.equal(subject!.getChildText('subject'), '');

  // §10.1.1: locked until configured: nobody else gets in, and the room is not there for them.
  const refused = await join(bob, room, 'Bob');
  t.equal(refused.self.attrs.type, 'error');
  t.equal(condition(refused.self), 'item-not-found', 'a locked room is item-not-found to others');
  t.ok(refused.self.getChild('x', 'http://jabber.org/protocol/muc'), 'the error presence carries the MUC element');
  const info = await iq(bob, 'get', room, xml('query', { xmlns: DISCO_INFO }));
  t.equal(condition(info), 'item-not-found', 'disco of a locked room: item-not-found');

  const accepted = await iq(alice, 'set', room, xml('query', { xmlns: MUC_OWNER }, xml('x', { xmlns: DATA, type: 'submit' })));
  t.equal(accepted.attrs.type, 'result', 'an empty submitted form accepts the defaults');
  const bobIn = await join(bob, room, 'Bob');
  t.same(statusCodes(bobIn.self), [110], 'now open; no 201 for the second occupant');
  t.same(itemOf(bobIn.self), { affiliation: 'none', role: 'participant', jid: bob.jid });
  t.ok(await alice.next(presenceFrom(`${room}/Bob`)), 'the owner sees bob enter');
});

t.test('a reserved room: the configuration form, then the room as configured', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `reserved@${SERVICE}`;
  await join(alice, room, 'Alice');

  const got = await iq(alice, 'get', room, xml('query', { xmlns: MUC_OWNER }));
  t.equal(got.attrs.type, 'result');
  const form = got.getChild('query', MUC_OWNER)!.getChild('x', DATA)!;
  t.equal(form.attrs.type, 'form');
  const vars = form.getChildren('field').map((f) => f.attrs.var);
  for (const name of [
    'FORM_TYPE',
    'muc#roomconfig_roomname',
    'muc#roomconfig_roomdesc',
    'muc#roomconfig_persistentroom',
    'muc#roomconfig_publicroom',
    'muc#roomconfig_membersonly',
    'muc#roomconfig_moderatedroom',
    'muc#roomconfig_passwordprotectedroom',
    'muc#roomconfig_roomsecret',
    'muc#roomconfig_maxusers',
    'muc#roomconfig_whois',
    'muc#maxhistoryfetch',
    'muc#roomconfig_allowinvites',
    'muc#roomconfig_allowpm',
    'muc#roomconfig_changesubject',
    'muc#roomconfig_lang',
  ]) {
    t.ok(vars.includes(name), `the form has ${name}`);
  }
  t.same(fieldValue(form, 'FORM_TYPE'), ['http://jabber.org/protocol/muc#roomconfig']);
  t.same(fieldValue(form, 'muc#roomconfig_whois'), ['moderators'], 'semi-anonymous by default');

  t.equal(condition(await configure(alice, room, { 'muc#roomconfig_whois': 'everyone' })), 'not-acceptable', 'a value out of the options is refused');
  t.equal(condition(await configure(alice, room, { 'muc#roomconfig_passwordprotectedroom': '1' })), 'not-acceptable', 'password-protected without a password');
  t.equal(condition(await join(bob, room, 'Bob').then((j) => j.self)), 'item-not-found', 'still locked after refused forms');

  const ok = await configure(alice, room, {
    'muc#roomconfig_roomname': 'The Reserved Room',
    'muc#roomconfig_roomdesc': 'Configured before opening',
    'muc#roomconfig_lang': 'en',
    'muc#roomconfig_whois': 'anyone',
    'muc#roomconfig_maxusers': '2',
    'muc#roomconfig_changesubject': '1',
  });
  t.equal(ok.attrs.type, 'result');
  const again = await iq(alice, 'get', room, xml('query', { xmlns: MUC_OWNER }));
  const form2 = again.getChild('query', MUC_OWNER)!.getChild('x', DATA)!;
  t.same(fieldValue(form2, 'muc#roomconfig_roomname'), ['The Reserved Room'], 'the form shows what was set');
  t.same(fieldValue(form2, 'muc#roomconfig_maxusers'), ['2']);

  const bobIn = await join(bob, room, 'Bob');
  t.same(statusCodes(bobIn.self).sort(), [100, 110], 'non-anonymous: 100 on entering');
  const aliceSeen = await bob.next(presenceFrom(`${room}/Alice`));
  t.equal(itemOf(aliceSeen).jid, alice.jid, 'non-anonymous: everyone sees real JIDs');

  // maxusers = 2: a third occupant is refused (an owner or admin would still get in).
  await ts.addUser('carol');
  const [carol] = await users(t, ts, 'carol');
  const full = await join(carol!, room, 'Carol');
  t.equal(condition(full.self), 'service-unavailable', 'the room is full');

  // Only owners configure.
  const notOwner = await iq(bob, 'get', room, xml('query', { xmlns: MUC_OWNER }));
  t.equal(condition(notOwner), 'forbidden', 'a participant may not see the configuration');

  // A later change: 104 to everyone; 173 when it becomes semi-anonymous.
  await configure(alice, room, { 'muc#roomconfig_whois': 'moderators' });
  const change = await bob.next((el) => el.name === 'message' && el.attrs.from === room && statusCodes(el).length > 0);
  t.same(statusCodes(change).sort(), [104, 173], 'configuration change: 104 and 173 (now semi-anonymous)');
  await configure(alice, room, { 'muc#roomconfig_whois': 'anyone' });
  const change2 = await bob.next((el) => el.name === 'message' && el.attrs.from === room && statusCodes(el).length > 0);
  t.same(statusCodes(change2).sort(), [104, 172], 'and 172 when it becomes non-anonymous');
});

t.test('cancelling the initial configuration destroys the new room', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `cancelled@${SERVICE}`;
  await join(alice, room, 'Alice');
  const cancelled = await iq(alice, 'set', room, xml('query', { xmlns: MUC_OWNER }, xml('x', { xmlns: DATA, type: 'cancel' })));
  t.equal(cancelled.attrs.type, 'result');
  const gone = await alice.next(presenceFrom(`${room}/Alice`, 'unavailable'));
  t.ok(gone.getChild('x', MUC_USER)?.getChild('destroy'), 'the owner is told the room is gone');
  // The name is free: bob creates a room of that name and owns it.
  const fresh = await join(bob, room, 'Bob');
  t.same(statusCodes(fresh.self).sort(), [110, 201], 'a new room, created by bob');
});

t.test('destroying a room with an alternate venue', async (t) => {
  const {
    room,
    clients: [alice, bob],
  } = await openRoom(t, 'doomed', ['alice', 'bob']);
  const forbidden = await iq(bob, 'set', room, xml('query', { xmlns: MUC_OWNER }, xml('destroy', {})));
  t.equal(condition(forbidden), 'forbidden', 'only owners destroy');

  const result = await iq(
    alice,
    'set',
    room,
    xml('query', { xmlns: MUC_OWNER }, xml('destroy', { jid: `newplace@${SERVICE}` }, xml('reason', {}, 'Moved'), xml('password', {}, 'secret'))),
  );
  t.equal(result.attrs.type, 'result');
  for (const [c, nick] of [
    [bob, 'Bob'],
    [alice, 'Alice'],
  ] as const) {
    const p = await c.next(presenceFrom(`${room}/${nick}`, 'unavailable'));
    const x = p.getChild('x', MUC_USER)!;
    t.match(x.getChild('item')!.attrs, { affiliation: 'none', role: 'none' }, `${nick}: affiliation and role none`);
    const destroy = x.getChild('destroy')!;
    t.equal(destroy.attrs.jid, `newplace@${SERVICE}`, `${nick}: the alternate venue`);
    t.equal(destroy.getChildText('reason'), 'Moved');
    t.equal(destroy.getChildText('password'), 'secret');
  }
  const info = await iq(bob, 'get', room, xml('query', { xmlns: DISCO_INFO }));
  t.equal(condition(info), 'item-not-found', 'the room is gone');
  const message = xml('message', { to: room, type: 'groupchat', id: 'after' }, xml('body', {}, 'hello?'));
  await bob.send(message);
  const bounced = await bob.next((el) => el.name === 'message' && el.attrs.id === 'after');
  t.equal(condition(bounced), 'item-not-found', 'a message to a destroyed room bounces');
});

t.test('a temporary room vanishes with its last occupant; groupchat 1.0 creates an open room', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `fleeting@${SERVICE}`;
  // Without the MUC element (groupchat 1.0): the room opens at once.
  const created = await join(alice, room, 'Alice', { mucX: false });
  t.same(statusCodes(created.self).sort(), [110, 201]);
  const bobIn = await join(bob, room, 'Bob');
  t.equal(bobIn.self.attrs.type, undefined, 'open without configuration');
  await groupchat(bob, room, 'hi');
  await alice.next(groupchatWith('hi'));
  await alice.send(xml('presence', { to: `${room}/Alice`, type: 'unavailable' }));
  await alice.next(presenceFrom(`${room}/Alice`, 'unavailable'));
  t.ok((await iq(bob, 'get', room, xml('query', { xmlns: DISCO_INFO }))).attrs.type === 'result', 'still there while bob is');
  await bob.send(xml('presence', { to: `${room}/Bob`, type: 'unavailable' }));
  const left = await bob.next(isSelfPresence(room));
  t.equal(left.attrs.type, 'unavailable');
  const info = await iq(bob, 'get', room, xml('query', { xmlns: DISCO_INFO }));
  t.equal(condition(info), 'item-not-found', 'gone when the last occupant left');
});

t.test('room creation policy: remote users and the admins option', async (t) => {
  const ts = await startMucServer(t, { modules: { muc: { room_creation: 'admins', admins: ['boss@localhost'] } } });
  const [alice, boss] = await users(t, ts, 'alice', 'boss');
  const refused = await join(alice, `nope@${SERVICE}`, 'Alice');
  t.equal(condition(refused.self), 'not-allowed', 'only admins create rooms here');
  const created = await join(boss!, `yes@${SERVICE}`, 'Boss');
  t.same(statusCodes(created.self).sort(), [110, 201], 'an admin creates rooms');
});
