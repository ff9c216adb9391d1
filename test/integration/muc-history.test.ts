// XEP-0045 discussion history across a restart, over real sockets: a persistent room keeps its
// last messages in the database (SQLite, and PostgreSQL when reachable), bounded by its history
// length; a joiner after the restart gets them with their original XEP-0203 <delay/> stamps and
// the <history/> limits as before; a retracted message stays gone; a temporary room keeps none.
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { onPostgres } from '../helpers/databases.js';
import {
  MUC,
  SERVICE,
  createInstant,
  createRoom,
  fromRoom,
  groupchat,
  groupchatWith,
  iq,
  isSelfPresence,
  isSubject,
  join,
  restartableMucServer,
  users,
  xml,
} from './muc-helpers.js';
import { connect } from '../helpers/clients.js';
import type { TestServer } from '../helpers/harness.js';

const DELAY = 'urn:xmpp:delay';

/**
 * A new session of carol joins with this <history/> request: the history messages it gets,
 * up to the subject (the end of the join sequence).
 */
async function historyOnJoin(t: Test, ts: TestServer, room: string, nick: string, history: Record<string, string> = {}): Promise<Element[]> {
  await ts.addUser('carol').catch(() => {});
  const c = await connect(ts, 'carol', { resource: nick });
  t.teardown(() => c.stop());
  const got: Element[] = [];
  await c.send(xml('presence', { to: `${room}/${nick}` }, xml('x', { xmlns: MUC }, xml('history', history))));
  await c.next(isSelfPresence(room));
  for (;;) {
    const el = await c.next((e) => e.name === 'message' && fromRoom(room)(e));
    if (isSubject(room)(el)) return got;
    got.push(el);
  }
}

const bodies = (els: Element[]) => els.map((e) => e.getChildText('body'));

async function scenario(t: Test, storage: Record<string, unknown>): Promise<void> {
  const start = restartableMucServer(t, { ...storage, modules: { muc: { max_history: 4, default_history: 3 } } });
  const room = `kept@${SERVICE}`;
  const temp = `temp@${SERVICE}`;

  const first = await start();
  let [alice, bob] = await users(t, first, 'alice', 'bob');
  // History length 4 (the service's most): six messages, the last four kept.
  await createRoom(alice!, room, 'Alice', { 'muc#roomconfig_persistentroom': '1', 'muc#maxhistoryfetch': '4' });
  await join(bob!, room, 'Bob');
  const stamps = new Map<string, string>();
  const sent: Element[] = [];
  for (let i = 1; i <= 6; i++) {
    await groupchat(alice!, room, `m${i}`);
    sent.push(await bob!.next(groupchatWith(`m${i}`)));
  }
  const before = await historyOnJoin(t, first, room, 'C1');
  for (const e of before) stamps.set(e.getChildText('body')!, e.getChild('delay', DELAY)!.attrs.stamp!);
  t.same(bodies(before), ['m3', 'm4', 'm5', 'm6'], 'before the restart: the last four');
  // A moderator retracts m4 (XEP-0425): it goes from the stored history too.
  const m4id = sent[3]!.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id!;
  const retracted = await iq(alice!, 'set', room, xml('moderate', { xmlns: 'urn:xmpp:message-moderate:1', id: m4id }, xml('retract', { xmlns: 'urn:xmpp:message-retract:1' })));
  t.equal(retracted.attrs.type, 'result', 'm4 retracted');
  await createInstant(alice!, temp, 'Alice');
  await groupchat(alice!, temp, 'temporary');
  await alice!.next(groupchatWith('temporary'));
  await first.stop();

  const second = await start();
  [alice, bob] = await users(t, second, 'alice', 'bob');
  const after = await historyOnJoin(t, second, room, 'C2');
  t.same(bodies(after), ['m3', 'm5', 'm6'], 'after the restart: the stored history, without the retracted message');
  for (const e of after) {
    const delay = e.getChild('delay', DELAY);
    t.equal(delay?.attrs.from, room, `${e.getChildText('body')}: delayed, from the room`);
    t.equal(delay?.attrs.stamp, stamps.get(e.getChildText('body')!), `${e.getChildText('body')}: with its original stamp`);
    t.equal(e.attrs.from, `${room}/Alice`, 'from the sender as occupant');
    t.ok(e.getChild('stanza-id', 'urn:xmpp:sid:0'), 'with its stanza id');
  }
  t.equal(after.length, 3);
  const m5 = after[1]!;
  t.equal(m5.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id, sent[4]!.getChild('stanza-id', 'urn:xmpp:sid:0')!.attrs.id, 'the same stanza id as when it was sent');

  // The limits apply as before.
  t.same(bodies(await historyOnJoin(t, second, room, 'C3', { maxstanzas: '2' })), ['m5', 'm6'], 'maxstanzas');
  t.same(bodies(await historyOnJoin(t, second, room, 'C4', { maxchars: '0' })), [], 'maxchars=0');
  const since = stamps.get('m6')!;
  const expected = ['m3', 'm5', 'm6'].filter((b) => Date.parse(stamps.get(b)!) >= Date.parse(since));
  t.same(bodies(await historyOnJoin(t, second, room, 'C5', { since })), expected, 'since');

  // New messages after the restart join the stored ones, and the bound holds.
  await join(bob!, room, 'Bob');
  for (const body of ['n1', 'n2']) {
    await groupchat(bob!, room, body);
    await bob!.next(groupchatWith(body));
  }
  t.same(bodies(await historyOnJoin(t, second, room, 'C6')), ['m5', 'm6', 'n1', 'n2'], 'old and new, at most the history length');
  const db = second.server.core.storage.db as unknown as import('kysely').Kysely<Record<string, { room: string }>>;
  const rows = await db.selectFrom('muc_history').selectAll().execute();
  t.equal(rows.length, 4, 'the stored rows are bounded by the history length');
  t.ok(
    rows.every((r) => r.room === 'kept'),
    "a temporary room's messages are not stored",
  );

  // Fewer messages of history: the stored rows are trimmed with the configuration.
  await iq(
    alice!,
    'set',
    room,
    xml(
      'query',
      { xmlns: 'http://jabber.org/protocol/muc#owner' },
      xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'muc#maxhistoryfetch' }, xml('value', {}, '1'))),
    ),
  );
  t.equal((await db.selectFrom('muc_history').selectAll().execute()).length, 1, 'trimmed to the new history length');
}

t.test('history of persistent rooms survives a restart on SQLite', (t) => scenario(t, {}));

t.test('history of persistent rooms survives a restart on PostgreSQL', (t) => onPostgres(t, 'starling_muc_history', (storage) => scenario(t, storage)));
