// The room's fan-out (one serialisation per message, only 'to' differing) over real sockets:
// every occupant of a room of raw streams gets each message once, in order, addressed to its
// own full JID (escaped), the body intact; stream management still counts and queues what goes
// out this way, and resends it on resumption; routing hooks still run (a user who blocked the
// room gets nothing) and a hook that changes the stanza gets its change on the wire.
import t from 'tap';
import { Element } from '@xmpp/xml';
import { nothingArrived, rawAuthenticated, rawLogin, rawRoundTrip, type RawStream } from '../helpers/clients.js';
import { nextHook } from '../helpers/harness.js';
import { SERVICE, createInstant, groupchat, groupchatWith, iq, isSubject, join, startMucServer, users, xml } from './muc-helpers.js';

const SM = 'urn:xmpp:sm:3';
const MUC_X = "<x xmlns='http://jabber.org/protocol/muc'><history maxchars='0'/></x>";

async function enterRaw(
  t: { teardown(fn: () => unknown): void },
  port: number,
  user: string,
  resource: string,
  room: string,
  nick: string,
): Promise<{ s: RawStream; jid: string }> {
  // rawLogin writes the resource into the XML as it is: escape it here.
  const { s, bound } = await rawLogin(port, user, resource.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;'));
  t.teardown(() => s.close());
  const jid = bound.getChild('bind')!.getChildText('jid')!;
  s.write(`<presence to='${room}/${nick}'>${MUC_X}</presence>`);
  await s.until(() => s.elements.some(isSubject(room)), 10_000);
  return { s, jid };
}

const groupchats = (s: RawStream) => s.elements.filter((e) => e.name === 'message' && e.attrs.type === 'groupchat' && e.getChild('body'));

t.test('every occupant gets each message once, in order, addressed to itself', async (t) => {
  // With the modules whose routing hooks look at every message (an archive that copies the
  // children list while removing nothing must not cost a serialisation per occupant).
  const ts = await startMucServer(t, {}, ['sasl', 'ping', 'disco', 'roster', 'presence', 'blocking', 'carbons', 'mam', 'muc']);
  const [alice] = await users(t, ts, 'alice');
  const room = `crowd@${SERVICE}`;
  await createInstant(alice!, room, 'Alice');
  const N = 30;
  const occupants: { s: RawStream; jid: string }[] = [];
  for (let i = 0; i < N; i++) {
    await ts.addUser(`u${i}`);
    // Resources that need escaping in an attribute value.
    const resource = i % 3 === 0 ? `r&<'"${i}` : `r${i}`;
    occupants.push(await enterRaw(t, ts.port, `u${i}`, resource, room, `U${i}`));
  }
  for (const o of occupants) o.s.elements.length = 0;
  const body = `hello <all> & "everyone" — ünïcödé ${'x'.repeat(100)}`;
  for (let m = 0; m < 5; m++) await groupchat(alice!, room, `${m}: ${body}`, [xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' })]);
  for (const [i, o] of occupants.entries()) {
    await o.s.until(() => groupchats(o.s).length >= 5, 10_000);
    const got = groupchats(o.s);
    t.equal(got.length, 5, `occupant ${i}: five messages, no duplicate`);
    t.same(
      got.map((e) => e.getChildText('body')),
      [0, 1, 2, 3, 4].map((m) => `${m}: ${body}`),
      `occupant ${i}: bodies intact and in order`,
    );
    t.ok(
      got.every((e) => e.attrs.to === o.jid),
      `occupant ${i}: 'to' is its own full JID (${o.jid})`,
    );
    t.ok(
      got.every((e) => e.attrs.from === `${room}/Alice` && !!e.getChild('active', 'http://jabber.org/protocol/chatstates')),
      `occupant ${i}: from the sender, payload kept`,
    );
    const ids = new Set(got.map((e) => e.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id));
    t.equal(ids.size, 5, `occupant ${i}: a stanza id per message`);
  }

  // One serialisation per message, whatever the number of occupants: count the server's
  // serialisations of room messages (the server runs in this process, on the same ltx).
  const proto = Element.prototype as { toString(): string };
  const original = proto.toString;
  let serialisations = 0;
  proto.toString = function (this: Element) {
    if (this.name === 'message' && this.attrs.from === `${room}/Alice` && this.getChildText('body') === 'counted') serialisations++;
    return original.call(this);
  };
  t.teardown(() => void (proto.toString = original));
  await groupchat(alice!, room, 'counted');
  for (const o of occupants) await o.s.until(() => groupchats(o.s).some((e) => e.getChildText('body') === 'counted'), 10_000);
  proto.toString = original;
  t.equal(serialisations, 1, `one serialisation for ${N + 1} recipients`);

  const reference = groupchats(occupants[1]!.s).map((e) => e.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id);
  t.ok(
    occupants.every((o) => groupchats(o.s).every((e, k) => e.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id === reference[k])),
    'the same stanza ids for everyone: one message, one serialisation',
  );
});

t.test('stream management counts and queues fanned-out messages, and resends them on resumption', async (t) => {
  const ts = await startMucServer(t, {
    modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'sm', 'muc'],
    modules: { sm: { resume_timeout: 10, request_ack_every: 3 } },
  });
  const [alice] = await users(t, ts, 'alice');
  await ts.addUser('bob');
  const room = `managed@${SERVICE}`;
  await createInstant(alice!, room, 'Alice');

  const { s, bound } = await rawLogin(ts.port, 'bob', 'phone');
  const jid = bound.getChild('bind')!.getChildText('jid')!;
  s.write(`<enable xmlns='${SM}' resume='true'/>`);
  const enabled = await s.element('enabled');
  s.write(`<presence to='${room}/Bob'>${MUC_X}</presence>`);
  await s.until(() => s.elements.some(isSubject(room)));
  const joinStanzas = s.elements.filter((e) => e.name === 'presence' || e.name === 'message').length;
  s.elements.length = 0;

  for (let i = 1; i <= 3; i++) await groupchat(alice!, room, `m${i}`);
  await s.until(() => groupchats(s).length === 3);
  // request_ack_every = 3: the server asks for an ack as the fanned-out messages count up.
  await s.until(() => s.elements.some((e) => e.name === 'r' && e.attrs.xmlns === SM));
  t.pass('the server asks for acks: fanned-out stanzas are counted');
  const handled = joinStanzas + 3;
  s.write(`<a xmlns='${SM}' h='${handled - 1}'/>`); // all but m3 acknowledged
  s.write(`<r xmlns='${SM}'/>`);
  await s.element('a'); // the server's answer: it handled the <a/> before it
  const interrupted = nextHook(ts, 'session/interrupted');
  s.close(); // cut: the session is kept for resumption, and stays in the room
  await interrupted;
  for (let i = 4; i <= 5; i++) await groupchat(alice!, room, `m${i}`);
  // alice's own copy of m5 comes in the same fan-out as the one queued for bob's kept session.
  await alice!.next(groupchatWith('m5'));

  const back = await rawAuthenticated(ts.port, 'bob');
  t.teardown(() => back.close());
  back.write(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='${handled - 1}'/>`);
  await back.element('resumed');
  await back.until(() => groupchats(back).length >= 3);
  await rawRoundTrip(back); // anything more sent again would be in before the answer
  const resent = groupchats(back);
  t.same(
    resent.map((e) => e.getChildText('body')),
    ['m3', 'm4', 'm5'],
    'the unacknowledged and the queued, once, in order',
  );
  t.ok(
    resent.every((e) => e.attrs.to === jid && e.attrs.from === `${room}/Alice`),
    'serialised again from the queued element: right to and from',
  );
  t.ok(
    resent.every((e) => e.getChild('occupant-id', 'urn:xmpp:occupant-id:0')),
    'with the whole payload',
  );
});

t.test('routing hooks still run on the fan-out path', async (t) => {
  const ts = await startMucServer(t, { modules_enabled: ['sasl', 'ping', 'disco', 'roster', 'presence', 'blocking', 'carbons', 'muc'] });
  const [alice, bob, carol] = await users(t, ts, 'alice', 'bob', 'carol');
  const room = `hooks@${SERVICE}`;
  await createInstant(alice!, room, 'Alice');
  await join(bob!, room, 'Bob');
  await join(carol!, room, 'Carol');

  // Carbons strips <private/> on the way to the recipient (a hook changing the stanza): the
  // change must be on the wire, not the string made before it.
  await groupchat(alice!, room, 'with private', [xml('private', { xmlns: 'urn:xmpp:carbons:2' })]);
  const seen = await bob!.next(groupchatWith('with private'));
  t.notOk(seen.getChild('private', 'urn:xmpp:carbons:2'), 'a hook removed a child: the recipient gets the stanza as changed');

  // Blocking (XEP-0191): bob blocks the room; its messages no longer reach him.
  const blocked = await iq(bob!, 'set', 'localhost', xml('block', { xmlns: 'urn:xmpp:blocking' }, xml('item', { jid: room })));
  t.equal(blocked.attrs.type, 'result');
  await groupchat(alice!, room, 'after the block');
  t.ok(await carol!.next(groupchatWith('after the block')), 'carol gets it');
  t.ok(await nothingArrived(bob!, groupchatWith('after the block'), alice!), 'bob, who blocked the room, does not');
});
