// XEP-0045 occupants over real sockets: entering (order, history with maxstanzas / maxchars /
// seconds / since), nicknames (conflicts, 303, 210), leaving, the subject, private messages,
// mediated and direct (XEP-0249) invitations, voice requests, password-protected and
// members-only rooms, and one user in a room from two clients.
import t from 'tap';
import { rawLogin } from '../helpers/clients.js';
import { connect, nothingArrived } from '../helpers/clients.js';
import {
  DATA,
  MUC_USER,
  OCCUPANT_ID,
  SERVICE,
  admin,
  condition,
  createInstant,
  createRoom,
  groupchat,
  groupchatWith,
  isSubject,
  itemOf,
  join,
  nextId,
  openRoom,
  presenceFrom,
  sleep,
  startMucServer,
  statusCodes,
  users,
  xml,
} from './muc-helpers.js';

t.test('entering: the order of the join sequence, and discussion history on request', async (t) => {
  const {
    ts,
    room,
    clients: [alice, bob],
  } = await openRoom(t, 'history', ['alice', 'bob']);
  await alice.next(presenceFrom(`${room}/Bob`));
  for (let i = 1; i <= 3; i++) {
    await groupchat(alice, room, `old ${i}`);
    await bob.next(groupchatWith(`old ${i}`));
  }
  await sleep(1100);
  const cut = new Date().toISOString();
  await sleep(50);
  for (let i = 4; i <= 5; i++) {
    await groupchat(alice, room, `new ${i}`);
    await bob.next(groupchatWith(`new ${i}`));
  }
  await ts.addUser('carol');

  // A raw stream sees every stanza in the order the server wrote it.
  const enter = async (nick: string, history: string) => {
    const { s } = await rawLogin(ts.port, 'carol', nick);
    t.teardown(() => s.close());
    s.write(`<presence to='${room}/${nick}'><x xmlns='http://jabber.org/protocol/muc'>${history}</x></presence>`);
    await s.until(() => s.elements.some(isSubject(room)));
    return s.elements.filter((e) => e.name === 'presence' || e.name === 'message');
  };

  const all = await enter('C1', '');
  const kinds = all.map((e) => (e.name === 'presence' ? (statusCodes(e).includes(110) ? 'self' : 'occupant') : e.getChild('subject') ? 'subject' : 'history'));
  t.same(kinds, ['occupant', 'occupant', 'self', 'history', 'history', 'history', 'history', 'history', 'subject'], 'occupants, self-presence, history, subject');
  const history = all.filter((e) => e.getChild('body'));
  t.same(
    history.map((e) => e.getChildText('body')),
    ['old 1', 'old 2', 'old 3', 'new 4', 'new 5'],
    'history oldest first',
  );
  const delay = history[0]!.getChild('delay', 'urn:xmpp:delay')!;
  t.equal(delay.attrs.from, room, 'delayed delivery, from the room');
  t.ok(Date.parse(delay.attrs.stamp!) > 0, 'with the time it was sent');
  t.equal(history[0]!.attrs.from, `${room}/Alice`, 'from the sender as occupant');

  const bodies = async (nick: string, h: string) => (await enter(nick, h)).filter((e) => e.getChild('body')).map((e) => e.getChildText('body'));
  t.same(await bodies('C2', "<history maxstanzas='2'/>"), ['new 4', 'new 5'], 'maxstanzas');
  t.same(await bodies('C3', "<history maxchars='0'/>"), [], 'maxchars=0: no history');
  const oneSize = history[4]!.toString().length;
  t.same(await bodies('C4', `<history maxchars='${oneSize + 20}'/>`), ['new 5'], 'maxchars: only complete stanzas within the limit');
  t.same(await bodies('C5', "<history seconds='1'/>"), ['new 4', 'new 5'], 'seconds');
  t.same(await bodies('C6', `<history since='${cut}'/>`), ['new 4', 'new 5'], 'since');
  t.same(await bodies('C7', `<history since='${cut}' maxstanzas='1'/>`), ['new 5'], 'the smallest amount meeting every limit');
});

t.test('nicknames: conflicts, changes (303), the service-modified nick (210), leaving', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `nicks@${SERVICE}`;
  await createInstant(alice, room, 'Alice');
  const conflict = await join(bob, room, 'Alice');
  t.equal(condition(conflict.self), 'conflict', 'a nick in use is a conflict');
  await join(bob, room, 'Bob');
  await alice.next(presenceFrom(`${room}/Bob`));

  const taken = xml('presence', { to: `${room}/Alice` });
  await bob.send(taken);
  const err = await bob.next((el) => el.name === 'presence' && el.attrs.type === 'error');
  t.equal(condition(err), 'conflict', 'changing to a nick in use: conflict');

  await bob.send(xml('presence', { to: `${room}/Robert` }));
  for (const c of [alice, bob]) {
    const out = await c.next(presenceFrom(`${room}/Bob`, 'unavailable'));
    t.ok(statusCodes(out).includes(303), '303 on the old nick');
    t.equal(itemOf(out).nick, 'Robert', 'with the new nick');
    t.equal(statusCodes(out).includes(110), c === bob, '110 only for the one who changed');
    const back = await c.next(presenceFrom(`${room}/Robert`));
    t.equal(itemOf(back).role, 'participant');
  }
  await groupchat(bob, room, 'renamed');
  t.equal((await alice.next(groupchatWith('renamed'))).attrs.from, `${room}/Robert`, 'messages come from the new nick');

  // 210: the nick as asked for changes under preparation (NFC): the room says so.
  const [carol] = await users(t, ts, 'carol');
  const joined = await join(carol!, room, 'Rene\u0301');
  t.equal(joined.self.attrs.from, `${room}/Ren\u00e9`, 'the prepared nick');
  t.ok(statusCodes(joined.self).includes(210), '210: the service changed the nick');

  await bob.send(xml('presence', { to: `${room}/Robert`, type: 'unavailable' }, xml('status', {}, 'bye all')));
  const gone = await alice.next(presenceFrom(`${room}/Robert`, 'unavailable'));
  t.equal(gone.getChildText('status'), 'bye all', 'leaving, with a status');
  t.equal(itemOf(gone).role, 'none');
  const self = await bob.next(presenceFrom(`${room}/Robert`, 'unavailable'));
  t.ok(statusCodes(self).includes(110), 'the leaver gets its own unavailable presence');
  await groupchat(alice, room, 'after bob left');
  t.ok(await nothingArrived(bob, groupchatWith('after bob left'), alice), 'nothing more for someone who left');
  await groupchat(bob, room, 'outsider');
  const refused = await bob.next((el) => el.name === 'message' && el.attrs.type === 'error');
  t.equal(condition(refused), 'not-acceptable', 'a non-occupant may not send to the room');
});

t.test('presence is broadcast; client-supplied muc#user and occupant-id are stripped', async (t) => {
  const {
    room,
    clients: [alice, bob],
  } = await openRoom(t, 'status', ['alice', 'bob']);
  await alice.next(presenceFrom(`${room}/Bob`));
  const forged = xml('x', { xmlns: MUC_USER }, xml('item', { affiliation: 'owner', role: 'moderator' }), xml('status', { code: '201' }));
  await bob.send(xml('presence', { to: `${room}/Bob` }, xml('show', {}, 'away'), xml('status', {}, 'lunch'), forged, xml('occupant-id', { xmlns: OCCUPANT_ID, id: 'fake' })));
  const seen = await alice.next((el) => presenceFrom(`${room}/Bob`)(el) && el.getChildText('show') === 'away');
  t.equal(seen.getChildText('status'), 'lunch', 'show and status broadcast');
  const xs = seen.getChildren('x', MUC_USER);
  t.equal(xs.length, 1, "only the room's muc#user element");
  t.same(itemOf(seen), { affiliation: 'none', role: 'participant', jid: bob.jid }, 'the real affiliation and role (a moderator sees the real JID)');
  t.same(statusCodes(seen), [], 'no forged status code');
  const ids = seen.getChildren('occupant-id', OCCUPANT_ID);
  t.equal(ids.length, 1);
  t.not(ids[0]!.attrs.id, 'fake', 'the occupant id is the room’s');
});

t.test('the subject: moderators set it, participants only if allowed, newcomers get it', async (t) => {
  const {
    room,
    clients: [alice, bob, carol],
  } = await openRoom(t, 'subject', ['alice', 'bob'], { others: ['carol'] });
  await bob.send(xml('message', { to: room, type: 'groupchat', id: 'subj1' }, xml('subject', {}, 'by bob')));
  const refused = await bob.next((el) => el.name === 'message' && el.attrs.id === 'subj1');
  t.equal(condition(refused), 'forbidden', 'a participant may not change the subject by default');
  await alice.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', {}, 'Topic of the day')));
  const changed = await bob.next(isSubject(room));
  t.equal(changed.getChildText('subject'), 'Topic of the day');
  t.equal(changed.attrs.from, `${room}/Alice`, 'from whoever set it');
  const { subject } = await join(carol, room, 'Carol');
  t.equal(subject!.getChildText('subject'), 'Topic of the day', 'a newcomer gets the current subject');
  t.equal(subject!.attrs.from, `${room}/Alice`);
});

t.test('private messages between occupants', async (t) => {
  const {
    room,
    clients: [alice, bob, carol],
  } = await openRoom(t, 'pm', ['alice', 'bob'], { others: ['carol'] });
  await bob.send(xml('message', { to: `${room}/Alice`, type: 'chat', id: 'pm1' }, xml('body', {}, 'psst')));
  const pm = await alice.next((el) => el.name === 'message' && el.attrs.id === 'pm1');
  t.equal(pm.attrs.from, `${room}/Bob`, 'from the sender’s occupant JID');
  t.equal(pm.attrs.type, 'chat');
  t.equal(pm.getChildText('body'), 'psst');
  t.ok(pm.getChild('x', MUC_USER), 'marked as coming through the room');

  const send = async (c: typeof alice, to: string, type: string) => {
    const id = nextId('pm');
    await c.send(xml('message', { to, type, id }, xml('body', {}, 'x')));
    return c.next((el) => el.name === 'message' && el.attrs.id === id && el.attrs.type === 'error');
  };
  t.equal(condition(await send(bob, `${room}/Nobody`, 'chat')), 'item-not-found', 'to a nick nobody has');
  t.equal(condition(await send(carol, `${room}/Alice`, 'chat')), 'not-acceptable', 'from a non-occupant');
  t.equal(condition(await send(bob, `${room}/Alice`, 'groupchat')), 'bad-request', 'a groupchat message to an occupant');
  await createRoom(alice, `nopm@${SERVICE}`, 'Alice', { 'muc#roomconfig_allowpm': 'none' });
  await join(bob, `nopm@${SERVICE}`, 'Bob');
  t.equal(condition(await send(bob, `nopm@${SERVICE}/Alice`, 'chat')), 'forbidden', 'private messages switched off');
});

t.test('mediated invitations, declines, and direct invitations (XEP-0249)', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob, carol] = await users(t, ts, 'alice', 'bob', 'carol');
  const room = `club@${SERVICE}`;
  await createRoom(alice, room, 'Alice', {
    'muc#roomconfig_membersonly': '1',
    'muc#roomconfig_passwordprotectedroom': '1',
    'muc#roomconfig_roomsecret': 'cauldron',
  });
  const before = await join(bob, room, 'Bob', { password: 'cauldron' });
  t.equal(condition(before.self), 'registration-required', 'members-only: not yet');

  await alice.send(xml('message', { to: room }, xml('x', { xmlns: MUC_USER }, xml('invite', { to: 'bob@localhost' }, xml('reason', {}, 'Join us')))));
  const invitation = await bob.next((el) => el.name === 'message' && el.attrs.from === room && !!el.getChild('x', MUC_USER)?.getChild('invite'));
  const x = invitation.getChild('x', MUC_USER)!;
  t.equal(x.getChild('invite')!.attrs.from, 'alice@localhost', 'from the inviter');
  t.equal(x.getChild('invite')!.getChildText('reason'), 'Join us');
  t.equal(x.getChildText('password'), 'cauldron', 'with the room password');
  t.ok(invitation.getChildText('body'), 'and a body for simple clients');

  const wrong = await join(bob, room, 'Bob', { password: 'wrong' });
  t.equal(condition(wrong.self), 'not-authorized', 'the wrong password');
  const none = await join(bob, room, 'Bob');
  t.equal(condition(none.self), 'not-authorized', 'no password');
  const inside = await join(bob, room, 'Bob', { password: 'cauldron' });
  t.equal(inside.self.attrs.type, undefined, 'invited into a members-only room: a member now');
  t.equal(itemOf(inside.self).affiliation, 'member');

  // A participant may not invite unless the room allows it.
  await bob.send(xml('message', { to: room, id: 'inv2' }, xml('x', { xmlns: MUC_USER }, xml('invite', { to: 'carol@localhost' }))));
  t.equal(condition(await bob.next((el) => el.attrs.id === 'inv2' && el.attrs.type === 'error')), 'forbidden', 'invitations are for moderators here');

  // carol declines alice's invitation.
  await alice.send(xml('message', { to: room }, xml('x', { xmlns: MUC_USER }, xml('invite', { to: 'carol@localhost' }))));
  await carol.next((el) => el.name === 'message' && !!el.getChild('x', MUC_USER)?.getChild('invite'));
  await carol.send(xml('message', { to: room }, xml('x', { xmlns: MUC_USER }, xml('decline', { to: 'alice@localhost' }, xml('reason', {}, 'Busy')))));
  const declined = await alice.next((el) => el.name === 'message' && !!el.getChild('x', MUC_USER)?.getChild('decline'));
  t.equal(declined.attrs.from, room, 'the decline comes from the room');
  t.equal(declined.getChild('x', MUC_USER)!.getChild('decline')!.attrs.from, 'carol@localhost', 'naming the invitee');
  t.equal(declined.getChild('x', MUC_USER)!.getChild('decline')!.getChildText('reason'), 'Busy');

  // XEP-0249: client to client; the room then lets the invitee in (a member: alice added carol).
  const open = `open@${SERVICE}`;
  await createRoom(alice, open, 'Alice', { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'pw' });
  await alice.send(xml('message', { to: carol.jid }, xml('x', { xmlns: 'jabber:x:conference', jid: open, password: 'pw', reason: 'come' })));
  const direct = await carol.next((el) => el.name === 'message' && !!el.getChild('x', 'jabber:x:conference'));
  const conf = direct.getChild('x', 'jabber:x:conference')!;
  t.equal(direct.attrs.from, alice.jid, 'a direct invitation comes from the inviter');
  t.equal(conf.attrs.jid, open);
  const joined = await join(carol, conf.attrs.jid!, 'Carol', { password: conf.attrs.password });
  t.equal(joined.self.attrs.type, undefined, 'and gets the invitee in');
});

t.test('members-only rooms and the member list', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `members@${SERVICE}`;
  await createRoom(alice, room, 'Alice', { 'muc#roomconfig_membersonly': '1' });
  t.equal(condition((await join(bob, room, 'Bob')).self), 'registration-required');
  t.equal((await admin(alice, room, [{ jid: 'bob@localhost', affiliation: 'member', nick: 'Bobby' }])).attrs.type, 'result');
  const conflict = await join(alice, room, 'Bobby');
  t.equal(condition(conflict.self), 'conflict', "a member's reserved nick is not for others");
  const bobIn = await join(bob, room, 'Bobby');
  t.equal(itemOf(bobIn.self).affiliation, 'member', 'a member enters');
});

t.test('voice requests in a moderated room', async (t) => {
  const ts = await startMucServer(t);
  const [alice, dave] = await users(t, ts, 'alice', 'dave');
  const room = `stage@${SERVICE}`;
  await createRoom(alice, room, 'Alice', { 'muc#roomconfig_moderatedroom': '1' });
  const entered = await join(dave, room, 'Dave');
  t.equal(itemOf(entered.self).role, 'visitor', 'unaffiliated users are visitors in a moderated room');
  await alice.next(presenceFrom(`${room}/Dave`));
  await dave.send(xml('message', { to: room, type: 'groupchat', id: 'silent' }, xml('body', {}, 'can I speak?')));
  t.equal(condition(await dave.next((el) => el.attrs.id === 'silent')), 'forbidden', 'visitors may not speak');

  const request = xml(
    'x',
    { xmlns: DATA, type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#request')),
    xml('field', { var: 'muc#role', type: 'list-single' }, xml('value', {}, 'participant')),
  );
  await dave.send(xml('message', { to: room }, request));
  const approval = await alice.next((el) => el.name === 'message' && el.attrs.from === room && !!el.getChild('x', DATA));
  const form = approval.getChild('x', DATA)!;
  t.equal(form.attrs.type, 'form', 'moderators get the approval form');
  const value = (name: string) =>
    form
      .getChildren('field')
      .find((f) => f.attrs.var === name)
      ?.getChildText('value');
  t.equal(value('FORM_TYPE'), 'http://jabber.org/protocol/muc#request');
  t.equal(value('muc#roomnick'), 'Dave');
  t.equal(value('muc#jid'), dave.jid, 'with the real JID, for a moderator');
  t.equal(value('muc#request_allow'), 'false');

  const answer = xml(
    'x',
    { xmlns: DATA, type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#request')),
    xml('field', { var: 'muc#role' }, xml('value', {}, 'participant')),
    xml('field', { var: 'muc#jid' }, xml('value', {}, dave.jid)),
    xml('field', { var: 'muc#roomnick' }, xml('value', {}, 'Dave')),
    xml('field', { var: 'muc#request_allow' }, xml('value', {}, 'true')),
  );
  await alice.send(xml('message', { to: room }, answer));
  const voiced = await dave.next((el) => presenceFrom(`${room}/Dave`)(el) && itemOf(el).role === 'participant');
  t.ok(statusCodes(voiced).includes(110), 'dave is told he has voice');
  await groupchat(dave, room, 'thank you');
  t.ok(await alice.next(groupchatWith('thank you')), 'and speaks');
});

t.test('one user, two clients, one nick', async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const bob2 = await connect(ts, 'bob', { resource: 'second' });
  t.teardown(() => bob2.stop());
  const room = `multi@${SERVICE}`;
  await createInstant(alice, room, 'Alice');
  await join(bob, room, 'Bob');
  await alice.next(presenceFrom(`${room}/Bob`));
  const second = await join(bob2, room, 'Bob');
  t.equal(second.self.attrs.type, undefined, 'the same user may enter twice under one nick');
  await groupchat(alice, room, 'to both');
  t.ok(await bob.next(groupchatWith('to both')), 'first client');
  t.ok(await bob2.next(groupchatWith('to both')), 'second client');
  await bob2.send(xml('presence', { to: `${room}/Bob`, type: 'unavailable' }));
  t.ok(await bob2.next(presenceFrom(`${room}/Bob`, 'unavailable')), 'the leaving client is told');
  t.ok(await nothingArrived(alice, presenceFrom(`${room}/Bob`, 'unavailable'), bob2), 'the others see bob stay');
  await groupchat(alice, room, 'still there');
  t.ok(await bob.next(groupchatWith('still there')));
  // A client that goes away without a word leaves the room (its session closed).
  await bob.stop();
  t.ok(await alice.next(presenceFrom(`${room}/Bob`, 'unavailable')), 'the last session gone: bob left');
});
