// XEP-0045 persistence over real sockets: a persistent room keeps its configuration,
// affiliations, subject and occupant ids across a restart (SQLite, and PostgreSQL when
// reachable); temporary rooms do not survive; occupants are told of the shutdown (332); rooms
// are not owned by an account.
import t, { type Test } from 'tap';
import { makeJid } from '../../src/jid.js';
import { onPostgres } from '../helpers/databases.js';
import type { TestServer } from '../helpers/harness.js';
import {
  DISCO_INFO,
  MUC_ADMIN,
  OCCUPANT_ID,
  SERVICE,
  admin,
  condition,
  configure,
  createInstant,
  createRoom,
  iq,
  isSubject,
  join,
  list,
  presenceFrom,
  restartableMucServer,
  statusCodes,
  users,
  xml,
} from './muc-helpers.js';

async function scenario(t: Test, storage: Record<string, unknown>): Promise<void> {
  const start = restartableMucServer(t, storage);

  const room = `keep@${SERVICE}`;
  const temp = `temp@${SERVICE}`;
  let first: TestServer | undefined = await start();
  for (const u of ['alice', 'bob', 'carol', 'dave']) await first.addUser(u);
  let [alice] = await users(t, first, 'alice');
  const created = await createRoom(alice!, room, 'Alice', {
    'muc#roomconfig_persistentroom': '1',
    'muc#roomconfig_roomname': 'Kept',
    'muc#roomconfig_roomdesc': 'Survives restarts',
    'muc#roomconfig_membersonly': '1',
    'muc#roomconfig_passwordprotectedroom': '1',
    'muc#roomconfig_roomsecret': 's3cret',
  });
  const idBefore = created.self.getChild('occupant-id', OCCUPANT_ID)?.attrs.id;
  t.ok(idBefore, 'an occupant id');
  await admin(alice!, room, [{ jid: 'bob@localhost', affiliation: 'member', nick: 'Bobby' }]);
  await admin(alice!, room, [{ jid: 'carol@localhost', affiliation: 'outcast' }], 'trouble');
  await admin(alice!, room, [{ jid: 'dave@localhost', affiliation: 'admin' }]);
  await alice!.send(xml('message', { to: room, type: 'groupchat' }, xml('subject', {}, 'Kept topic')));
  await alice!.next(isSubject(room));
  await createInstant(alice!, temp, 'Alice');

  // Shutdown: everyone in a room is told (332) before the streams close.
  const stopping = first.stop();
  const shutdown = await alice!.next(presenceFrom(`${room}/Alice`, 'unavailable'));
  t.same(statusCodes(shutdown).sort(), [110, 332], 'occupants are told of the shutdown (332)');
  await stopping;
  first = undefined;

  const second = await start();
  [alice] = await users(t, second, 'alice');
  const [bob, carol, dave] = await users(t, second, 'bob', 'carol', 'dave');
  const info = await iq(bob!, 'get', room, xml('query', { xmlns: DISCO_INFO }));
  t.equal(info.attrs.type, 'result', 'the persistent room is back');
  const features = info
    .getChild('query', DISCO_INFO)!
    .getChildren('feature')
    .map((f) => f.attrs.var);
  for (const f of ['muc_persistent', 'muc_membersonly', 'muc_passwordprotected']) t.ok(features.includes(f), `with ${f}`);
  t.equal(info.getChild('query', DISCO_INFO)!.getChild('identity')!.attrs.name, 'Kept', 'and its name');
  t.equal(condition(await iq(bob!, 'get', temp, xml('query', { xmlns: DISCO_INFO }))), 'item-not-found', 'the temporary room is not');

  t.equal(condition((await join(carol!, room, 'Carol', { password: 's3cret' })).self), 'forbidden', 'the ban survived');
  t.equal(condition((await join(alice!, room, 'Bobby')).self), 'conflict', "the member's reserved nick too");
  const bobIn = await join(bob!, room, 'Bobby', { password: 's3cret' });
  t.equal(bobIn.self.attrs.type, undefined, 'the member enters');
  t.equal(bobIn.subject!.getChildText('subject'), 'Kept topic', 'the subject survived');
  const aliceIn = await join(alice!, room, 'Alice');
  t.same(statusCodes(aliceIn.self), [110], 'no 201: the room existed');
  t.equal(aliceIn.self.getChild('occupant-id', OCCUPANT_ID)?.attrs.id, idBefore, 'the same occupant id as before the restart');
  const owners = await list(alice!, room, { affiliation: 'owner' });
  t.same(
    owners
      .getChild('query', MUC_ADMIN)!
      .getChildren('item')
      .map((i) => i.attrs.jid),
    ['alice@localhost'],
    'owners',
  );
  const admins = await list(alice!, room, { affiliation: 'admin' });
  t.same(
    admins
      .getChild('query', MUC_ADMIN)!
      .getChildren('item')
      .map((i) => i.attrs.jid),
    ['dave@localhost'],
    'admins',
  );
  void dave;

  // Rooms are the service's, not an account's: deleting the admin's account leaves the room.
  await second.server.core.accounts.delete(makeJid('dave', 'localhost'));
  const tables = (await second.server.core.storage.db.introspection.getTables()).filter((tb) => tb.name.startsWith('muc_'));
  t.ok(tables.length >= 2, 'the muc tables');
  t.notOk(
    tables.some((tb) => tb.columns.some((c) => c.name === 'username')),
    'none is keyed by account',
  );
  t.equal((await iq(bob!, 'get', room, xml('query', { xmlns: DISCO_INFO }))).attrs.type, 'result', 'the room stays');

  // No longer persistent: the rows go, and the room with its last occupant.
  await configure(alice!, room, { 'muc#roomconfig_persistentroom': '0' });
  const db = second.server.core.storage.db as unknown as import('kysely').Kysely<Record<string, { service: string }>>;
  const rows = await db.selectFrom('muc_room').selectAll().execute();
  t.equal(rows.length, 0, 'a temporary room has no row');
  const affRows = await db.selectFrom('muc_affiliation').selectAll().execute();
  t.equal(affRows.length, 0, 'nor affiliations');
}

t.test('persistent rooms on SQLite', (t) => scenario(t, {}));

t.test('persistent rooms on PostgreSQL', (t) => onPostgres(t, 'starling_muc_it', (storage) => scenario(t, storage)));
