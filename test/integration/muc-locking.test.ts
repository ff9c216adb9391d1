// XEP-0045 §10.1 room locking over real sockets, with clients that never configure a new room
// (Dino 0.4 answers 201 with neither an instant-room request nor a form): the owner's first
// groupchat message opens the room with the default configuration, and so does the lock
// timeout ([modules.muc] room_lock_timeout); room_lock_timeout = 0 keeps the strict behaviour
// (locked until configured); room_locking = false creates rooms unlocked.
import t from 'tap';
import type { MucService } from '../../modules/muc/service.js';
import type { TestServer } from '../helpers/harness.js';
import { DISCO_INFO, SERVICE, condition, configure, groupchat, groupchatWith, iq, join, startMucServer, statusCodes, users, xml } from './muc-helpers.js';

const service = (ts: TestServer) => ts.server.core.hosts.get('localhost')!.services.get('muc')!.service as MucService;

/** Resolves with how the room was unlocked, the next time one is. */
function nextUnlock(ts: TestServer, room: string): Promise<string> {
  return new Promise((resolve) => {
    const undo = service(ts).onRoomUnlocked((jid, why) => {
      if (jid.toString() !== room) return;
      undo();
      resolve(why);
    });
  });
}

t.test("the owner's first groupchat message opens a room nobody configured", async (t) => {
  const ts = await startMucServer(t);
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `dino@${SERVICE}`;

  const created = await join(alice!, room, 'Alice');
  t.same(statusCodes(created.self).sort(), [110, 201], 'created: 201, and the client does nothing about it');
  t.equal(condition((await join(bob!, room, 'Bob')).self), 'item-not-found', 'locked: others cannot enter yet');

  const unlocked = nextUnlock(ts, room);
  await groupchat(alice!, room, 'hello?');
  await alice!.next(groupchatWith('hello?'));
  t.equal(await unlocked, 'message', 'opened by the message');
  const bobIn = await join(bob!, room, 'Bob');
  t.same(statusCodes(bobIn.self), [110], 'now others enter');
  t.ok(await bob!.next(groupchatWith('hello?')), "and get the owner's message as history");
  const info = await iq(bob!, 'get', room, xml('query', { xmlns: DISCO_INFO }));
  const features = info
    .getChild('query', DISCO_INFO)!
    .getChildren('feature')
    .map((f) => f.attrs.var);
  for (const f of ['muc_temporary', 'muc_open', 'muc_unmoderated', 'muc_semianonymous']) t.ok(features.includes(f), `the default configuration: ${f}`);

  // Configuring later is an ordinary change (§10.2): the occupants are told (104).
  t.equal((await configure(alice!, room, { 'muc#roomconfig_roomname': 'Named' })).attrs.type, 'result');
  t.ok(await bob!.next((el) => el.name === 'message' && statusCodes(el).includes(104)), 'a later configuration is announced with 104');
});

t.test('a room nobody configured opens after room_lock_timeout', async (t) => {
  const ts = await startMucServer(t, { modules: { muc: { room_lock_timeout: 0.05 } } });
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `waiting@${SERVICE}`;
  const unlocked = nextUnlock(ts, room);
  await join(alice!, room, 'Alice');
  t.equal(await unlocked, 'timeout', 'opened by the timeout');
  t.same(statusCodes((await join(bob!, room, 'Bob')).self), [110], 'others enter');
});

t.test('room_lock_timeout = 0: locked until configured (strict §10.1)', async (t) => {
  const ts = await startMucServer(t, { modules: { muc: { room_lock_timeout: 0 } } });
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `strict@${SERVICE}`;
  await join(alice!, room, 'Alice');
  await groupchat(alice!, room, 'hello?');
  await alice!.next(groupchatWith('hello?'));
  t.equal(condition((await join(bob!, room, 'Bob')).self), 'item-not-found', "the owner's message does not open it");
  t.equal((await configure(alice!, room, {})).attrs.type, 'result', 'the owner accepts the defaults');
  t.same(statusCodes((await join(bob!, room, 'Bob')).self), [110], 'now others enter');
});

t.test('room_locking = false: new rooms are open at once', async (t) => {
  const ts = await startMucServer(t, { modules: { muc: { room_locking: false } } });
  const [alice, bob] = await users(t, ts, 'alice', 'bob');
  const room = `open@${SERVICE}`;
  const created = await join(alice!, room, 'Alice');
  t.same(statusCodes(created.self).sort(), [110, 201], 'still created with 201');
  t.same(statusCodes((await join(bob!, room, 'Bob')).self), [110], 'others enter at once');
  t.equal((await configure(alice!, room, { 'muc#roomconfig_roomname': 'Later' })).attrs.type, 'result', 'the owner may still configure it');
});
