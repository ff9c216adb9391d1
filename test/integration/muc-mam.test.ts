// XEP-0313 archives of MUC rooms over real sockets (modules/muc-mam): a logged room archives
// its groupchat messages under the stanza-ids occupants see, and pages back forwards, backwards,
// flipped, by nick, by id; real JIDs only for those who may see them; an unlogged room has no
// archive; who may query (members-only, password, outcasts, query_access); a moderator's
// retraction leaves a tombstone; the archive goes with its room (destroyed, emptied, or a
// temporary room the restart ended) and survives a restart with its persistent room (SQLite,
// and PostgreSQL when reachable); retention.
import t, { type Test } from 'tap';
import { sql, type Kysely } from 'kysely';
import type { Element } from '@xmpp/xml';
import type { TestServer } from '../helpers/harness.js';
import type { TestClient } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { MAM, forwarded, mamQuery, nextPurgePass, type MamQueryOptions, type MamQueryResult } from '../helpers/mam.js';
import { IdGenerator } from '../../src/storage/archive/ids.js';
import { ArchiveStore } from '../../src/storage/archive/store.js';
import {
  DATA,
  DISCO_INFO,
  MODULES,
  MUC_OWNER,
  MUC_USER,
  OCCUPANT_ID,
  SERVICE,
  admin,
  condition,
  configure,
  createRoom,
  groupchatWith,
  iq,
  join,
  nextId,
  openRoom,
  presenceFrom,
  restartableMucServer,
  sleep,
  startMucServer,
  statusCodes,
  users,
  xml,
} from './muc-helpers.js';

const WITH_ARCHIVE = [...MODULES, 'muc_mam'];
const SID = 'urn:xmpp:sid:0';
const LOGGING = { 'muc#roomconfig_enablelogging': '1' };

/** A MAM query to a room. */
const query = (c: TestClient, room: string, o: MamQueryOptions = {}): Promise<MamQueryResult> => mamQuery(c, { ...o, to: room });

async function features(c: TestClient, room: string): Promise<string[]> {
  const info = await iq(c, 'get', room, xml('query', { xmlns: DISCO_INFO }));
  return info
    .getChild('query', DISCO_INFO)!
    .getChildren('feature')
    .map((f) => f.attrs.var!);
}

/** Sends a groupchat message and waits for `echo` to receive it; resolves with the room's stanza-id. */
async function say(c: TestClient, room: string, body: string, echo: TestClient = c, extra: Element[] = []): Promise<string> {
  await c.send(xml('message', { to: room, type: 'groupchat', id: nextId() }, xml('body', {}, body), ...extra));
  const got = await echo.next(groupchatWith(body));
  return got.getChildren('stanza-id', SID).find((s) => s.attrs.by === room)!.attrs.id!;
}

/** Rows of one room in the archive table. */
async function archivedRows(ts: TestServer, room: string): Promise<number> {
  const db = ts.server.core.storage.db as unknown as Kysely<Record<string, { service: string; node: string; store: string }>>;
  const rows = await db.selectFrom('service_archive').selectAll().where('service', '=', SERVICE).where('node', '=', room.split('@')[0]!).where('store', '=', 'muc_mam').execute();
  return rows.length;
}

/** Waits (a little) until the room has `n` rows: writes are not awaited by the room's fan-out. */
async function rowsBecome(ts: TestServer, room: string, n: number): Promise<number> {
  let rows = await archivedRows(ts, room);
  for (let i = 0; i < 100 && rows !== n; i++) {
    await sleep(20);
    rows = await archivedRows(ts, room);
  }
  return rows;
}

async function destroy(c: TestClient, room: string): Promise<Element> {
  return iq(c, 'set', room, xml('query', { xmlns: MUC_OWNER }, xml('destroy', {}, xml('reason', {}, 'done'))));
}

t.test('a logged room: archived under its stanza-ids, paged every way', async (t) => {
  const {
    room,
    clients: [alice, bob, carol],
  } = await openRoom(t, 'log', ['alice'], { others: ['bob', 'carol'], modules: WITH_ARCHIVE, config: LOGGING });
  const bobIn = await join(bob!, room, 'Bob');
  t.ok(statusCodes(bobIn.self).includes(170), 'entering says the room is logged (170)');
  const f = await features(bob!, room);
  t.ok(f.includes(MAM), 'the room announces urn:xmpp:mam:2');
  t.ok(f.includes(`${MAM}#extended`), 'and #extended');

  const ids: string[] = [];
  const bodies: string[] = [];
  for (let i = 0; i < 12; i++) {
    const speaker = i % 3 === 0 ? alice! : bob!;
    const body = `line ${i}`;
    ids.push(await say(speaker, room, body, alice!));
    bodies.push(body);
  }
  await bob!.send(xml('message', { to: `${room}/Alice`, type: 'chat', id: nextId() }, xml('body', {}, 'a private word')));
  await alice!.next((el) => el.getChildText('body') === 'a private word');
  t.same([...ids].sort(), ids, 'the stanza-ids occupants see sort in the order of the messages');

  t.test('the whole archive, as the room sent it', async (t) => {
    const all = await query(bob!, room);
    t.equal(all.iq.attrs.type, 'result');
    t.same(all.ids, ids, 'every groupchat message, under the stanza-id the room gave it');
    t.same(all.bodies, bodies, 'in order; no private message');
    t.equal(all.complete, 'true');
    t.equal(all.count, '12');
    const result = all.results[0]!;
    t.equal(result.attrs.from, room, 'results come from the room');
    t.equal(result.attrs.to, bob!.jid, 'to the querying resource');
    const msg = forwarded(result);
    t.equal(msg.attrs.from, `${room}/Alice`, 'the forwarded message is from the occupant JID');
    t.equal(msg.attrs.to, undefined, 'without a to');
    t.equal(msg.attrs.type, 'groupchat');
    t.ok(msg.getChild('occupant-id', OCCUPANT_ID), 'with its occupant-id');
    t.notOk(msg.getChild('x', MUC_USER), 'a participant of a semi-anonymous room sees no real JID');
    const owner = await query(alice!, room, { max: 1 });
    t.equal(forwarded(owner.results[0]!).getChild('x', MUC_USER)?.getChild('item')?.attrs.jid, 'alice@localhost', 'its owner (a moderator) does');
  });

  t.test('forwards and backwards, flipped', async (t) => {
    const forward: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 5; page++) {
      const r = await query(bob!, room, { max: 5, after });
      forward.push(...r.ids);
      after = r.last;
      if (r.complete === 'true') break;
    }
    t.same(forward, ids, 'pages of 5 forwards');
    const pages: string[][] = [];
    let before = '';
    for (let page = 0; page < 5; page++) {
      const r = await query(bob!, room, { max: 5, before });
      pages.unshift(r.ids);
      before = r.first!;
      if (r.complete === 'true') break;
    }
    t.same(pages.flat(), ids, 'pages of 5 backwards from the end, each in order');
    t.same(pages[2], ids.slice(7), 'the last page first');
    const flipped = await query(bob!, room, { max: 5, before: '', flip: true });
    t.same(flipped.ids, ids.slice(7).reverse(), 'a flipped page: the same messages, newest first');
    t.equal(flipped.first, ids[7], 'its RSM set unchanged');
  });

  t.test('filters: a nick, ids, a real JID', async (t) => {
    const byBob = await query(alice!, room, { with: `${room}/Bob` });
    t.same(
      byBob.ids,
      ids.filter((_, i) => i % 3 !== 0),
      "with an occupant JID: that nick's messages",
    );
    t.same(
      byBob.bodies,
      bodies.filter((_, i) => i % 3 !== 0),
    );
    t.same((await query(bob!, room, { with: room })).ids, ids, 'with the room: everything');
    t.same((await query(bob!, room, { afterId: ids[3], beforeId: ids[6] })).ids, ids.slice(4, 6), 'after-id and before-id');
    t.same((await query(bob!, room, { ids: [ids[8]!, ids[1]!] })).ids, [ids[1], ids[8]], 'ids');
    t.equal(condition((await query(bob!, room, { after: 'nope' })).iq), 'item-not-found', 'an unknown id');
    t.equal(condition((await query(bob!, room, { with: 'alice@localhost' })).iq), 'forbidden', 'a real JID, for who may not see them: forbidden');
    t.same(
      (await query(alice!, room, { with: 'alice@localhost' })).ids,
      ids.filter((_, i) => i % 3 === 0),
      'for a moderator: that user',
    );
  });

  t.test('the form and the metadata', async (t) => {
    const form = await iq(bob!, 'get', room, xml('query', { xmlns: MAM }));
    const vars = form
      .getChild('query', MAM)!
      .getChild('x', DATA)!
      .getChildren('field')
      .map((f) => f.attrs.var);
    t.ok(vars.includes('with') && vars.includes('after-id'), 'the query form');
    const meta = await iq(bob!, 'get', room, xml('metadata', { xmlns: MAM }));
    t.equal(meta.getChild('metadata', MAM)?.getChild('start')?.attrs.id, ids[0], 'metadata: the first');
    t.equal(meta.getChild('metadata', MAM)?.getChild('end')?.attrs.id, ids[11], 'and the last message');
  });

  t.test('anyone who may enter an open room may read it, without real JIDs', async (t) => {
    const r = await query(carol!, room, { max: 3 });
    t.same(r.ids, ids.slice(0, 3), 'a user who never entered');
    t.notOk(forwarded(r.results[0]!).getChild('x', MUC_USER), 'sees no real JID');
    await admin(alice!, room, [{ jid: 'carol@localhost', affiliation: 'outcast' }]);
    t.equal(condition((await query(carol!, room)).iq), 'forbidden', 'an outcast may not');
  });

  t.test("a moderator's retraction leaves a tombstone", async (t) => {
    const target = ids[4]!;
    const moderated = await iq(
      alice!,
      'set',
      room,
      xml('moderate', { xmlns: 'urn:xmpp:message-moderate:1', id: target }, xml('retract', { xmlns: 'urn:xmpp:message-retract:1' }), xml('reason', {}, 'Spam')),
    );
    t.equal(moderated.attrs.type, 'result');
    const r = await query(bob!, room, { ids: [target] });
    t.same(r.ids, [target], 'the id stays in the archive');
    const tomb = forwarded(r.results[0]!);
    t.equal(tomb.getChild('body'), undefined, 'without its body');
    const retracted = tomb.getChild('retracted', 'urn:xmpp:message-retract:1');
    t.ok(retracted?.attrs.stamp, 'a retracted tombstone');
    t.equal(retracted?.getChild('moderated', 'urn:xmpp:message-moderate:1')?.attrs.by, `${room}/Alice`, 'saying who moderated it');
    t.equal(retracted?.getChildText('reason'), 'Spam');
  });

  t.test('a client cannot put a real JID into the archive', async (t) => {
    const id = await say(bob!, room, 'spoofing', alice!, [xml('x', { xmlns: MUC_USER }, xml('item', { jid: 'evil@example.org' }))]);
    const r = await query(alice!, room, { ids: [id] });
    const items = forwarded(r.results[0]!).getChildren('x', MUC_USER);
    t.equal(items.length, 1, 'one muc#user element');
    t.equal(items[0]!.getChild('item')!.attrs.jid, 'bob@localhost', "the room's, with the real sender");
  });
});

t.test('a room without logging has no archive', async (t) => {
  const {
    ts,
    room,
    clients: [alice, bob],
  } = await openRoom(t, 'quiet', ['alice'], { others: ['bob'], modules: WITH_ARCHIVE, config: {} });
  const bobIn = await join(bob!, room, 'Bob');
  t.notOk(statusCodes(bobIn.self).includes(170), 'no 170');
  t.notOk((await features(bob!, room)).includes(MAM), 'no urn:xmpp:mam:2 in its disco#info');
  await say(bob!, room, 'not for the record');
  await sleep(50);
  t.equal(await archivedRows(ts, room), 0, 'nothing stored');
  t.equal(condition((await query(bob!, room)).iq), 'service-unavailable', 'a query: service-unavailable');
  t.equal(condition(await iq(bob!, 'get', room, xml('query', { xmlns: MAM }))), 'service-unavailable', 'the form too');

  await configure(alice!, room, LOGGING);
  t.ok((await features(bob!, room)).includes(MAM), 'logging on: the archive is announced');
  const id = await say(bob!, room, 'for the record');
  t.same((await query(bob!, room)).ids, [id], 'and keeps what is said from then on');
  await configure(alice!, room, { 'muc#roomconfig_enablelogging': '0' });
  t.notOk((await features(bob!, room)).includes(MAM), 'logging off again: not announced');
  t.equal(condition((await query(bob!, room)).iq), 'service-unavailable', 'nor queried');
  await say(bob!, room, 'off again');
  await sleep(50);
  t.equal(await archivedRows(ts, room), 1, 'nor written');
});

t.test('who may read: members-only, password-protected, query_access', async (t) => {
  const {
    room,
    clients: [alice, bob, carol, dave],
  } = await openRoom(t, 'club', ['alice'], {
    others: ['bob', 'carol', 'dave'],
    modules: WITH_ARCHIVE,
    config: { ...LOGGING, 'muc#roomconfig_membersonly': '1' },
  });
  await admin(alice!, room, [{ jid: 'bob@localhost', affiliation: 'member' }]);
  await admin(alice!, room, [{ jid: 'dave@localhost', affiliation: 'admin' }]);
  const id = await say(alice!, room, 'members only');
  t.same((await query(bob!, room)).ids, [id], 'a member who is not in the room may read it');
  t.notOk(forwarded((await query(bob!, room)).results[0]!).getChild('x', MUC_USER), 'without real JIDs (semi-anonymous)');
  t.equal(
    forwarded((await query(dave!, room)).results[0]!)
      .getChild('x', MUC_USER)
      ?.getChild('item')?.attrs.jid,
    'alice@localhost',
    'an admin sees them, joined or not',
  );
  const refused = await query(carol!, room);
  t.equal(condition(refused.iq), 'forbidden', 'a non-member: forbidden');
  t.same(refused.results, [], 'and nothing of the archive');
  await admin(alice!, room, [{ jid: 'bob@localhost', affiliation: 'none' }]);
  t.equal(condition((await query(bob!, room)).iq), 'forbidden', 'no longer a member: forbidden');

  const secret = `secret@${SERVICE}`;
  await createRoom(alice!, secret, 'Alice', { ...LOGGING, 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'pw' });
  await say(alice!, secret, 'behind a password');
  t.equal(condition((await query(carol!, secret)).iq), 'forbidden', 'a password-protected room: not without entering');
  await join(carol!, secret, 'Carol', { password: 'pw' });
  t.same((await query(carol!, secret)).bodies, ['behind a password'], 'an occupant may');

  t.test('query_access = "occupants"', async (t) => {
    const ts2 = await startMucServer(t, { modules: { muc_mam: { query_access: 'occupants' } } }, WITH_ARCHIVE);
    const [erin, frank] = await users(t, ts2, 'erin', 'frank');
    const open = `open@${SERVICE}`;
    await createRoom(erin!, open, 'Erin', LOGGING);
    await say(erin!, open, 'hello');
    t.equal(condition((await query(frank!, open)).iq), 'forbidden', 'a user outside an open room: forbidden');
    await join(frank!, open, 'Frank');
    t.same((await query(frank!, open)).bodies, ['hello'], 'once in the room: allowed');
  });
});

t.test('real JIDs in a non-anonymous room', async (t) => {
  const {
    room,
    clients: [alice, bob],
  } = await openRoom(t, 'open', ['alice', 'bob'], {
    modules: WITH_ARCHIVE,
    config: { ...LOGGING, 'muc#roomconfig_whois': 'anyone' },
  });
  await say(alice!, room, 'who am I', bob!);
  const r = await query(bob!, room);
  t.equal(forwarded(r.results[0]!).getChild('x', MUC_USER)?.getChild('item')?.attrs.jid, 'alice@localhost', 'a participant sees the real JID');
  t.same((await query(bob!, room, { with: 'alice@localhost' })).bodies, ['who am I'], 'and may filter by it');
  // Semi-anonymous from now on: the same archive, without real JIDs for participants.
  await configure(alice!, room, { 'muc#roomconfig_whois': 'moderators' });
  t.notOk(forwarded((await query(bob!, room)).results[0]!).getChild('x', MUC_USER), 'what the querier may see now decides');
});

t.test('the archive goes with its room', async (t) => {
  const {
    ts,
    room,
    clients: [alice, bob],
  } = await openRoom(t, 'doomed', ['alice'], {
    others: ['bob'],
    modules: WITH_ARCHIVE,
    config: { ...LOGGING, 'muc#roomconfig_persistentroom': '1' },
  });
  await say(alice!, room, 'last words');
  t.equal(await rowsBecome(ts, room, 1), 1);
  t.equal((await destroy(alice!, room)).attrs.type, 'result', 'destroyed');
  await alice!.next(presenceFrom(`${room}/Alice`, 'unavailable'));
  t.equal(await rowsBecome(ts, room, 0), 0, 'its archive is deleted');
  await createRoom(alice!, room, 'Alice', LOGGING);
  const fresh = await query(alice!, room);
  t.equal(fresh.iq.attrs.type, 'result');
  t.same(fresh.ids, [], 'a new room of the same name starts with an empty archive');

  const temp = `brief@${SERVICE}`;
  await createRoom(bob!, temp, 'Bob', LOGGING);
  await say(bob!, temp, 'temporary');
  t.equal(await rowsBecome(ts, temp, 1), 1);
  await bob!.send(xml('presence', { to: `${temp}/Bob`, type: 'unavailable' }));
  await bob!.next(presenceFrom(`${temp}/Bob`, 'unavailable'));
  t.equal(await rowsBecome(ts, temp, 0), 0, 'a temporary room left by its last occupant: its archive too');
});

t.test('retention', async (t) => {
  // One data directory, two servers: the first archives (keeping everything), the second keeps
  // a day and purges right after its start, with the old message in place before it.
  const start = restartableMucServer(t, {}, WITH_ARCHIVE);
  const first = await start();
  const [alice] = await users(t, first, 'alice');
  const room = `old@${SERVICE}`;
  await createRoom(alice!, room, 'Alice', { ...LOGGING, 'muc#roomconfig_persistentroom': '1' });
  // A message from three days ago, written as the module writes them.
  const oldId = new IdGenerator(() => Date.now() - 3 * 86_400_000).next();
  const store = new ArchiveStore(first.server.core.storage, 'muc_mam', 'service');
  await store.append(SERVICE, 'old', {
    id: oldId,
    withBare: 'alice@localhost',
    withResource: 'Alice',
    direction: 'in',
    stanza: `<message from="${room}/Alice" type="groupchat"><body>ancient</body></message>`,
  });
  const recent = await say(alice!, room, 'recent');
  t.equal(await rowsBecome(first, room, 2), 2, 'both are archived');
  await alice!.stop();
  await first.stop();

  const purged = nextPurgePass('muc_mam');
  const second = await start({ modules: { muc_mam: { retention_days: 1 } } });
  t.equal((await purged).deleted, 1, 'the first pass after the start purges the old message');
  const [alice2] = await users(t, second, 'alice');
  t.same((await query(alice2!, room)).ids, [recent], 'messages older than retention_days are purged; newer ones stay');
});

t.test("the room archive's queries use its indexes (SQLite plans)", async (t) => {
  const ts = await startMucServer(t, {}, WITH_ARCHIVE);
  const plan = async (q: string) => {
    const rows = await sql.raw<{ detail: string }>(`explain query plan ${q}`).execute(ts.server.core.storage.db);
    return rows.rows.map((r) => r.detail).join(' | ');
  };
  const where = `service = 'conference.localhost' and node = 'r' and store = 'muc_mam'`;
  const main = await plan(`select * from service_archive where ${where} and (ts, id) > (1, 'x') order by ts, id limit 51`);
  t.match(main, /USING INDEX sqlite_autoindex_service_archive_1 \(service=\? AND node=\? AND store=\? AND \(ts,id\)>\(\?,\?\)\)/, main);
  t.notMatch(main, /TEMP B-TREE/, 'the archive in order, no sort');
  const nick = await plan(`select * from service_archive where ${where} and with_resource = 'Bob' and (ts, id) < (1, 'x') order by ts desc, id desc limit 51`);
  t.match(nick, /USING INDEX service_archive_nick_idx \(service=\? AND node=\? AND store=\? AND with_resource=\? AND \(ts,id\)<\(\?,\?\)\)/, nick);
  t.notMatch(nick, /TEMP B-TREE/, "one nick's messages in order, no sort");
  const real = await plan(`select * from service_archive where ${where} and with_bare = 'bob@localhost' order by ts, id limit 51`);
  t.match(real, /USING INDEX service_archive_with_idx/, real);
});

async function restartScenario(t: Test, storage: Record<string, unknown>): Promise<void> {
  const start = restartableMucServer(t, storage, WITH_ARCHIVE);
  const room = `kept@${SERVICE}`;
  const temp = `passing@${SERVICE}`;
  const first = await start();
  for (const u of ['alice', 'bob']) await first.addUser(u);
  const [alice] = await users(t, first, 'alice');
  await createRoom(alice!, room, 'Alice', { ...LOGGING, 'muc#roomconfig_persistentroom': '1' });
  const before = [await say(alice!, room, 'one'), await say(alice!, room, 'two')];
  await createRoom(alice!, temp, 'Alice', LOGGING);
  await say(alice!, temp, 'gone with the server');
  t.equal(await rowsBecome(first, temp, 1), 1);
  const stopping = first.stop();
  await alice!.next(presenceFrom(`${room}/Alice`, 'unavailable'));
  await stopping;

  const second = await start();
  const [alice2, bob] = await users(t, second, 'alice', 'bob');
  t.same((await query(bob!, room)).ids, before, 'the persistent room keeps its archive across the restart');
  await join(alice2!, room, 'Alice');
  const after = await say(alice2!, room, 'three');
  const all = await query(bob!, room);
  t.same(all.ids, [...before, after], 'new messages follow the old ones');
  t.same(all.bodies, ['one', 'two', 'three']);
  t.same((await query(bob!, room, { after: before[1] })).ids, [after], 'paging from an id of before the restart');
  t.equal(await archivedRows(second, temp), 0, "a temporary room's archive does not outlive it");
}

t.test('restart keeps the archive (SQLite)', (t) => restartScenario(t, {}));

t.test('restart keeps the archive (PostgreSQL)', (t) => onPostgres(t, 'starling_mucmam_it', (storage) => restartScenario(t, storage)));
