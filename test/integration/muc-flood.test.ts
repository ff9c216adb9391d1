// XEP-0045 flood control over real sockets: each occupant may send a burst of groupchat messages,
// then messages at the configured rate ([modules.muc] message_burst, message_rate); what goes over
// is bounced with a 'wait' policy-violation and never broadcast. Moderators are not limited;
// message_rate = 0 turns the limit off.
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import type { TestClient } from '../helpers/clients.js';
import { SERVICE, condition, createInstant, fromRoom, groupchat, join, startMucServer, users, xml } from './muc-helpers.js';

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const isGroupchat = (room: string) => (el: Element) => el.name === 'message' && el.attrs.type === 'groupchat' && fromRoom(room)(el) && el.getChild('body') !== undefined;

/** The bodies of the next `n` groupchat messages `c` gets from the room. */
async function bodies(c: TestClient, room: string, n: number): Promise<string[]> {
  const got: string[] = [];
  while (got.length < n) got.push((await c.next(isGroupchat(room))).getChildText('body')!);
  return got;
}

async function floodRoom(t: Test, muc: Record<string, unknown>) {
  const ts = await startMucServer(t, { modules: { muc } });
  const [alice, bob, carol] = await users(t, ts, 'alice', 'bob', 'carol');
  const room = `busy@${SERVICE}`;
  await createInstant(alice!, room, 'Alice');
  await join(bob!, room, 'Bob');
  await join(carol!, room, 'Carol');
  return { room, alice: alice!, bob: bob!, carol: carol! };
}

t.test('an occupant over the burst gets a wait policy-violation; the message is not broadcast', async (t) => {
  // A burst of three, then one message in 1000 s: the fourth is over.
  const { room, alice, bob, carol } = await floodRoom(t, { message_burst: 3, message_rate: 0.001 });
  for (const b of ['b1', 'b2', 'b3']) await groupchat(bob, room, b);
  t.same(await bodies(carol, room, 3), ['b1', 'b2', 'b3'], 'the burst goes through');
  await bob.send(xml('message', { to: room, type: 'groupchat', id: 'over' }, xml('body', {}, 'b4')));
  const bounced = await bob.next((el) => el.name === 'message' && el.attrs.id === 'over');
  t.equal(bounced.attrs.type, 'error', 'the fourth message bounces');
  t.equal(condition(bounced), 'policy-violation', 'policy-violation');
  const error = bounced.getChild('error')!;
  t.equal(error.attrs.type, 'wait', 'of type wait: try again later');
  t.match(error.getChildText('text', STANZAS), /too fast/, 'with a text saying why');

  // A moderator (the owner) is not limited; had b4 gone out, carol would get it before these.
  for (let i = 1; i <= 5; i++) await groupchat(alice, room, `a${i}`);
  t.same(await bodies(carol, room, 5), ['a1', 'a2', 'a3', 'a4', 'a5'], 'b4 was not broadcast; the moderator sends past the burst');
  t.same(await bodies(bob, room, 8).then((b) => b.filter((x) => x === 'b4')), [], "not even to the sender's own sessions");
});

t.test('message_rate = 0: no limit', async (t) => {
  const { room, bob, carol } = await floodRoom(t, { message_burst: 1, message_rate: 0 });
  const sent = Array.from({ length: 12 }, (_, i) => `m${i}`);
  for (const b of sent) await groupchat(bob, room, b);
  t.same(await bodies(carol, room, sent.length), sent, 'every message goes through');
});
