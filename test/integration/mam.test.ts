// XEP-0313 message archive management over real sockets: both sides archived, XEP-0359
// stanza-ids on delivered messages (the same id in both archives, forgeries removed), offline
// and re-routed messages archived once, what is and is not archived, paging over 1,000 messages
// both ways with the filters on SQLite and PostgreSQL, preferences (XEP-0441), errors, and the
// archive gone with the account.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { makeJid } from '../../src/jid.js';
import { sessionsEnded, startTestServer, type TestServer } from '../helpers/harness.js';
import { connect, rawLogin, rawRoundTrip, xml, type RawStream, type TestClient } from '../helpers/clients.js';
import { rowsOwnedBy } from '../helpers/owned-rows.js';
import { onPostgres } from '../helpers/databases.js';
import { FORWARD, MAM, field, forwarded, mamQuery, nextPurgePass, type MamQueryOptions, type MamQueryResult } from '../helpers/mam.js';
import { IdGenerator } from '../../src/storage/archive/ids.js';
import { ArchiveStore } from '../../src/storage/archive/store.js';

const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm', 'mam'];
const SID = 'urn:xmpp:sid:0';
const DATA = 'jabber:x:data';
const DELAY = 'urn:xmpp:delay';
const HINTS = 'urn:xmpp:hints';

let seq = 0;
const nextId = (p: string) => `${p}${++seq}`;

const chat = (to: string, id: string, text: string, ...extra: Element[]) => xml('message', { to, type: 'chat', id }, xml('body', {}, text), ...extra);
const isMessageId = (id: string) => (el: Element) => el.name === 'message' && el.attrs.id === id;
const errorCondition = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;
const stanzaIds = (el: Element) => el.getChildren('stanza-id', SID);
const stanzaIdBy = (el: Element, by: string) => stanzaIds(el).find((s) => s.attrs.by === by)?.attrs.id;

async function iq(c: TestClient, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = nextId('iq');
  await c.send(xml('iq', { type, id, ...(to ? { to } : {}) }, payload));
  return c.next((el) => el.name === 'iq' && el.attrs.id === id, 20_000);
}

const query = (c: TestClient, o: MamQueryOptions = {}): Promise<MamQueryResult> => mamQuery(c, o, 20_000);

/** Waits until the client has received a message with each of these ids. */
async function received(c: TestClient, ids: string[]): Promise<Element[]> {
  const out: Element[] = [];
  for (const id of ids) out.push(await c.next(isMessageId(id), 20_000));
  return out;
}

async function logout(ts: TestServer, client: TestClient, user: string): Promise<void> {
  const ended = sessionsEnded(ts, user);
  await client.stop();
  await ended;
}

t.test('archiving and stanza-ids', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  for (const u of ['alice', 'bob', 'carol']) await ts.addUser(u);
  const clients: TestClient[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.stop())));
  const alice = await connect(ts, 'alice', { resource: 'desk' });
  const bob = await connect(ts, 'bob', { resource: 'phone' });
  clients.push(alice, bob);

  t.test('the archive is announced on the account', async (t) => {
    const info = await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), 'alice@localhost');
    const features = info
      .getChild('query')!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    for (const f of [MAM, `${MAM}#extended`, SID]) t.ok(features.includes(f), f);
  });

  t.test('both sides archived; the stanza-id the recipient sees is the id in both archives', async (t) => {
    const id = nextId('m');
    await alice.send(chat('bob@localhost', id, 'hello bob', xml('origin-id', { xmlns: SID, id: 'o-1' })));
    const [got] = await received(bob, [id]);
    const archived = stanzaIdBy(got!, 'bob@localhost');
    t.ok(archived, 'the delivered message carries a stanza-id by the recipient’s archive');
    t.equal(stanzaIds(got!).length, 1, 'one stanza-id');
    t.ok(got!.getChild('origin-id', SID), 'the origin-id is kept');

    const mine = await query(alice, { before: '', max: 1 });
    t.same(mine.ids, [archived], 'the sender’s archive holds it under the same id');
    const out = forwarded(mine.results[0]!);
    t.equal(out.getChildText('body'), 'hello bob');
    t.equal(out.attrs.to, 'bob@localhost');
    t.equal(out.attrs.from, alice.jid);
    t.equal(out.attrs.xmlns, 'jabber:client');
    t.notOk(stanzaIdBy(out, 'bob@localhost'), 'the sender’s copy is the message as sent');
    const result = mine.results[0]!;
    t.equal(result.attrs.to, alice.jid, 'results go to the querying resource');
    t.equal(result.attrs.from, 'alice@localhost', 'from the archive');
    const stamp = result.getChild('result', MAM)!.getChild('forwarded', FORWARD)!.getChild('delay', DELAY)!.attrs.stamp!;
    t.ok(Math.abs(Date.parse(stamp) - Date.now()) < 10_000, 'a delay with the archive time');

    const theirs = await query(bob, { before: '', max: 1 });
    t.same(theirs.ids, [archived], 'the recipient’s archive too');
    t.equal(forwarded(theirs.results[0]!).attrs.from, alice.jid);
    t.equal(theirs.complete, 'true', 'nothing before it');
    t.equal(theirs.count, '1');
  });

  t.test('stanza-ids claiming to be by the archive are removed (XEP-0359 §4)', async (t) => {
    const id = nextId('m');
    await alice.send(
      chat(
        'bob@localhost',
        id,
        'forged',
        xml('stanza-id', { xmlns: SID, by: 'bob@localhost', id: 'forged-bob' }),
        xml('stanza-id', { xmlns: SID, by: 'BOB@localhost', id: 'forged-bob-2' }),
        xml('stanza-id', { xmlns: SID, by: 'alice@localhost', id: 'forged-alice' }),
        xml('stanza-id', { xmlns: SID, by: 'room@muc.example', id: 'keep' }),
      ),
    );
    const [got] = await received(bob, [id]);
    const ids = stanzaIds(got!).map((s) => `${s.attrs.by}=${s.attrs.id}`);
    t.equal(ids.length, 2, ids.join(' '));
    t.ok(ids.includes('room@muc.example=keep'), 'another entity’s id is left alone');
    const real = stanzaIdBy(got!, 'bob@localhost');
    t.ok(real && !real.startsWith('forged'), 'ours replaces the forgeries');
    t.same((await query(bob, { ids: [real!] })).ids, [real]);
    // Not archived (a chat state alone), still no forged id.
    const cs = nextId('cs');
    await alice.send(
      xml(
        'message',
        { to: 'bob@localhost', type: 'chat', id: cs },
        xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }),
        xml('stanza-id', { xmlns: SID, by: 'bob@localhost', id: 'forged-3' }),
      ),
    );
    const [state] = await received(bob, [cs]);
    t.same(stanzaIds(state!), [], 'removed even from what is not archived');
  });

  t.test('what is archived and what is not', async (t) => {
    const start = await query(bob, { before: '', max: 1 });
    const mark = start.ids[0]!;
    const to = 'bob@localhost';
    const m = (id: string, attrs: Record<string, string>, ...children: Element[]) => xml('message', { to, id, ...attrs }, ...children);
    const body = (text: string) => xml('body', {}, text);
    const cases: [string, Element, boolean][] = [
      ['chat-state', m('e-cs', { type: 'chat' }, xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' })), false],
      ['correction', m('e-fix', { type: 'chat' }, body('fixed'), xml('replace', { xmlns: 'urn:xmpp:message-correct:0', id: 'x' })), true],
      ['reaction', m('e-react', { type: 'chat' }, xml('reactions', { xmlns: 'urn:xmpp:reactions:0', id: 'x' }, xml('reaction', {}, '👍'))), true],
      ['receipt', m('e-rcpt', { type: 'chat' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'x' })), true],
      ['marker', m('e-mark', { type: 'chat' }, xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'x' })), true],
      ['retraction', m('e-retract', { type: 'chat' }, xml('retract', { xmlns: 'urn:xmpp:message-retract:1', id: 'x' })), true],
      ['omemo', m('e-omemo', { type: 'chat' }, xml('encrypted', { xmlns: 'eu.siacs.conversations.axolotl' }, xml('header', { sid: '1' }), xml('payload', {}, 'AAAA'))), true],
      ['normal', m('e-normal', {}, body('a normal message')), true],
      ['headline', m('e-headline', { type: 'headline' }, body('news')), false],
      ['no-store', m('e-nostore', { type: 'chat' }, body('secret'), xml('no-store', { xmlns: HINTS })), false],
      ['no-permanent-store', m('e-noperm', { type: 'chat' }, body('secret'), xml('no-permanent-store', { xmlns: HINTS })), false],
      ['store hint on a chat state', m('e-storecs', { type: 'chat' }, xml('gone', { xmlns: 'http://jabber.org/protocol/chatstates' }), xml('store', { xmlns: HINTS })), true],
    ];
    for (const [, stanza] of cases) await alice.send(stanza);
    const got = await received(
      bob,
      cases.map(([, s]) => s.attrs.id!),
    );
    for (const [i, [name, , archived]] of cases.entries()) {
      t.equal(stanzaIdBy(got[i]!, 'bob@localhost') !== undefined, archived, `${name}: ${archived ? 'archived, with a stanza-id' : 'not archived, no stanza-id'}`);
    }
    const expected = cases.filter(([, , a]) => a).map(([, s]) => s.attrs.id);
    const inBob = await query(bob, { afterId: mark });
    t.same(
      inBob.results.map((r) => forwarded(r).attrs.id),
      expected,
      'the recipient’s archive',
    );
    // The same id marks the same message in alice's archive.
    const inAlice = await query(alice, { afterId: mark });
    t.same(
      inAlice.results.map((r) => forwarded(r).attrs.id),
      expected,
      'the sender’s archive',
    );
    // Errors and groupchat from a client are not archived either.
    const err = nextId('err');
    await alice.send(xml('message', { to, type: 'error', id: err }, body('x')));
    const gc = nextId('gc');
    await alice.send(xml('message', { to: 'bob@localhost/phone', type: 'groupchat', id: gc }, body('room talk')));
    const bounced = await alice.next(isMessageId(gc));
    t.equal(bounced.attrs.type, 'error', 'groupchat to a user bounces');
    const check = nextId('chk');
    await alice.send(chat(to, check, 'check'));
    await received(bob, [check]);
    const latest = await query(alice, { before: '', max: 3 });
    t.same(
      latest.results.map((r) => forwarded(r).attrs.id),
      ['e-normal', 'e-storecs', check],
      'neither error nor groupchat archived',
    );
  });

  t.test('messages to oneself are archived once', async (t) => {
    const desk2 = await connect(ts, 'alice', { resource: 'laptop' });
    clients.push(desk2);
    const id = nextId('self');
    await alice.send(chat(desk2.jid, id, 'note to self'));
    const [got] = await received(desk2, [id]);
    const sid = stanzaIdBy(got!, 'alice@localhost');
    t.ok(sid, 'stanza-id on the copy delivered to the other resource');
    const mine = await query(alice, { with: 'alice@localhost' });
    t.same(mine.ids, [sid], 'one entry, found with with = own JID');
    await desk2.stop();
  });

  t.test('offline messages are archived, stored with their stanza-id', async (t) => {
    const carol = await connect(ts, 'carol', { resource: 'c' });
    await logout(ts, carol, 'carol');
    const id = nextId('off');
    await alice.send(chat('carol@localhost', id, 'while you were away'));
    // Alice's stanzas are handled in order: once her ping is answered, the message is stored.
    await alice.roundTrip();
    t.equal(await new ArchiveStore(ts.server.core.storage, 'offline').count('localhost', 'carol'), 1, 'stored offline');
    const back = await connect(ts, 'carol', { resource: 'c2' });
    clients.push(back);
    const [got] = await received(back, [id]);
    t.ok(got!.getChild('delay', DELAY), 'from offline storage');
    const sid = stanzaIdBy(got!, 'carol@localhost');
    t.ok(sid, 'with the stanza-id');
    t.same((await query(back, { before: '', max: 5 })).ids, [sid], 'in her archive under that id');
  });

  t.test('a message re-routed by stream management is archived once', async (t) => {
    // Bob's raw session with stream management: he gets the message and drops without acking.
    const drop = async (resource: string): Promise<{ s: RawStream; message: Element }> => {
      const { s } = await rawLogin(ts.port, 'bob', resource);
      s.write(`<enable xmlns='urn:xmpp:sm:3'/>`);
      await s.element('enabled');
      s.write('<presence/>');
      return { s, message: await s.element('message', 10_000) };
    };
    await logout(ts, bob, 'bob');
    const id = nextId('sm');
    const first = rawLogin(ts.port, 'bob', 'r1');
    const { s } = await first;
    s.write(`<enable xmlns='urn:xmpp:sm:3'/>`);
    await s.element('enabled');
    s.write('<presence/>');
    await rawRoundTrip(s); // the presence is handled: bob is available to take the message
    await alice.send(chat('bob@localhost', id, 'do not lose me'));
    const live = await s.until(() => s.elements.find((e) => e.name === 'message' && e.attrs.id === id), 10_000);
    const sid = stanzaIdBy(live, 'bob@localhost');
    t.ok(sid);
    const ended = sessionsEnded(ts, 'bob');
    s.close(); // unacknowledged: re-routed (to offline storage) when the session ends
    await ended;
    // Back from offline storage (a parsed copy), dropped again without an ack.
    const again = await drop('r2');
    t.equal(again.message.attrs.id, id);
    t.equal(stanzaIdBy(again.message, 'bob@localhost'), sid, 'the same stanza-id');
    const endedAgain = sessionsEnded(ts, 'bob');
    again.s.close();
    await endedAgain;
    const bob2 = await connect(ts, 'bob', { resource: 'phone2' });
    clients.push(bob2);
    const [last] = await received(bob2, [id]);
    t.equal(stanzaIdBy(last!, 'bob@localhost'), sid, 'still the same stanza-id');
    t.equal(stanzaIds(last!).length, 1);
    const found = await query(bob2, { before: '', max: 10 });
    t.equal(found.results.filter((r) => forwarded(r).attrs.id === id).length, 1, 'one archive entry');
  });

  t.test('queries: form, metadata, errors', async (t) => {
    const form = await iq(alice, 'get', xml('query', { xmlns: MAM }));
    const fields = form
      .getChild('query', MAM)!
      .getChild('x', DATA)!
      .getChildren('field')
      .map((f) => f.attrs.var);
    t.same(fields, ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);
    const meta = await iq(alice, 'get', xml('metadata', { xmlns: MAM }));
    const all = await query(alice, { max: 250 });
    const md = meta.getChild('metadata', MAM)!;
    t.equal(md.getChild('start')!.attrs.id, all.ids[0]);
    t.equal(md.getChild('end')!.attrs.id, all.ids[all.ids.length - 1]);
    t.ok(Date.parse(md.getChild('end')!.attrs.timestamp!) > 0);

    const cond = async (o: MamQueryOptions) => errorCondition((await query(alice, o)).iq);
    t.equal(await cond({ to: 'bob@localhost' }), 'forbidden', 'someone else’s archive');
    t.equal(errorCondition(await iq(alice, 'get', xml('prefs', { xmlns: MAM }), 'bob@localhost')), 'forbidden', 'someone else’s prefs');
    t.equal(await cond({ after: 'nope' }), 'item-not-found', 'unknown RSM after');
    t.equal(await cond({ before: '01HZZZZZZZZZZZZZZZZZZZZZZZ' }), 'item-not-found', 'unknown RSM before');
    t.equal(await cond({ afterId: 'nope' }), 'item-not-found', 'unknown after-id');
    t.equal(await cond({ ids: [all.ids[0]!, 'nope'] }), 'item-not-found', 'unknown id among ids');
    t.equal(await cond({ extraField: field('{urn:example}search', 'x') }), 'feature-not-implemented', 'unknown field');
    t.equal(await cond({ start: 'yesterday' }), 'bad-request', 'bad date');
    t.equal(await cond({ with: 'a@b@c' }), 'bad-request', 'bad with');
    t.equal(await cond({ index: 3 }), 'feature-not-implemented', 'paging by index');
  });

  t.test('deleting the account deletes its archive', async (t) => {
    const before = await rowsOwnedBy(ts.server.core.storage, 'localhost', 'carol');
    t.ok(before.archive! > 0);
    const prefs = await iq(
      clients.find((c) => c.jid.startsWith('carol'))!,
      'set',
      xml('prefs', { xmlns: MAM, default: 'always' }, xml('always'), xml('never')),
    );
    t.equal(prefs.attrs.type, 'result');
    t.ok((await rowsOwnedBy(ts.server.core.storage, 'localhost', 'carol')).user_data! > 0);
    await ts.server.core.accounts.delete(makeJid('carol', 'localhost'));
    const after = await rowsOwnedBy(ts.server.core.storage, 'localhost', 'carol');
    t.equal(after.archive, 0);
    t.equal(after.user_data, 0, 'and its preferences');
  });
});

t.test('preferences', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  for (const u of ['alice', 'bob', 'carol']) await ts.addUser(u);
  const alice = await connect(ts, 'alice', { resource: 'a' });
  const bob = await connect(ts, 'bob', { resource: 'b' });
  const carol = await connect(ts, 'carol', { resource: 'c' });
  t.teardown(() => Promise.all([alice, bob, carol].map((c) => c.stop())));

  const setPrefs = (c: TestClient, mode: string, always: string[] = [], never: string[] = []) =>
    iq(c, 'set', xml('prefs', { xmlns: MAM, default: mode }, xml('always', {}, ...always.map((j) => xml('jid', {}, j))), xml('never', {}, ...never.map((j) => xml('jid', {}, j)))));
  /** Sends a message and says whether the recipient got it with a stanza-id of its archive. */
  const archivedAt = async (from: TestClient, to: TestClient, toBare: string): Promise<boolean> => {
    const id = nextId('p');
    await from.send(chat(toBare, id, `pref test ${id}`));
    const [got] = await received(to, [id]);
    return stanzaIdBy(got!, toBare) !== undefined;
  };
  const lastBody = async (c: TestClient) => (await query(c, { before: '', max: 1 })).bodies[0];

  t.test('the default: always, empty lists', async (t) => {
    const got = await iq(carol, 'get', xml('prefs', { xmlns: MAM }));
    const prefs = got.getChild('prefs', MAM)!;
    t.equal(prefs.attrs.default, 'always');
    t.ok(prefs.getChild('always'), '<always/> present');
    t.ok(prefs.getChild('never'), '<never/> present');
    t.ok(await archivedAt(alice, carol, 'carol@localhost'));
  });

  t.test('never: nothing goes in, either way', async (t) => {
    const reply = await setPrefs(carol, 'never');
    t.equal(reply.getChild('prefs', MAM)!.attrs.default, 'never', 'the applied prefs come back');
    const before = await lastBody(carol);
    t.notOk(await archivedAt(alice, carol, 'carol@localhost'), 'incoming not archived');
    const out = nextId('out');
    await carol.send(chat('alice@localhost', out, 'from carol'));
    const [got] = await received(alice, [out]);
    t.ok(stanzaIdBy(got!, 'alice@localhost'), 'alice (always) archives it');
    t.equal(await lastBody(carol), before, 'carol’s archive unchanged');
  });

  t.test('roster: only contacts on the roster', async (t) => {
    await setPrefs(carol, 'roster');
    await iq(carol, 'set', xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'bob@localhost' })));
    t.ok(await archivedAt(bob, carol, 'carol@localhost'), 'bob is on the roster');
    t.notOk(await archivedAt(alice, carol, 'carol@localhost'), 'alice is not');
  });

  t.test('always and never lists override the default', async (t) => {
    await setPrefs(carol, 'never', ['alice@localhost']);
    t.ok(await archivedAt(alice, carol, 'carol@localhost'), 'alice always');
    t.notOk(await archivedAt(bob, carol, 'carol@localhost'), 'bob by the default');
    const reply = await setPrefs(carol, 'always', [], ['bob@localhost', 'alice@localhost/elsewhere']);
    const never = reply
      .getChild('prefs', MAM)!
      .getChild('never')!
      .getChildren('jid')
      .map((j) => j.getText());
    t.same(never, ['bob@localhost', 'alice@localhost/elsewhere']);
    t.notOk(await archivedAt(bob, carol, 'carol@localhost'), 'bob never');
    t.ok(await archivedAt(alice, carol, 'carol@localhost'), 'a full JID on the list matches only that resource');
    const before = await query(carol, { with: 'bob@localhost' });
    const out = nextId('o');
    await carol.send(chat('bob@localhost', out, 'to bob'));
    await received(bob, [out]);
    const after = await query(carol, { with: 'bob@localhost' });
    t.same(after.ids, before.ids, 'outgoing to bob not archived either');
    t.ok(after.ids.length > 0, '(the conversation with bob exists from when he was on the roster)');
  });

  t.test('bad preferences', async (t) => {
    t.equal(errorCondition(await setPrefs(carol, 'sometimes')), 'bad-request');
    t.equal(errorCondition(await setPrefs(carol, 'always', ['not@a@jid'])), 'jid-malformed');
  });
});

t.test('retention: expired messages are purged', async (t) => {
  // One data directory, two servers: the first archives (keeping everything), the second keeps
  // a day and purges at its start.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'starling-mam-retention-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = await startTestServer(t, { data_dir: dir, modules_enabled: MODULES });
  await first.addUser('alice');
  const store = new ArchiveStore(first.server.core.storage, 'mam');
  let clock = Date.now() - 3 * 86_400_000;
  const gen = new IdGenerator(() => clock);
  const append = (text: string) =>
    store.append('localhost', 'alice', {
      id: gen.next(),
      withBare: 'bob@localhost',
      withResource: '',
      direction: 'in',
      stanza: `<message from='bob@localhost' type='chat'><body>${text}</body></message>`,
    });
  await append('three days old');
  clock += 86_400_000;
  await append('two days old');
  clock = Date.now() - 3_600_000;
  await append('an hour old');
  await first.stop();

  const purged = nextPurgePass('mam');
  const second = await startTestServer(t, { data_dir: dir, modules_enabled: MODULES, modules: { mam: { retention_days: 1 } } });
  t.equal((await purged).deleted, 2, 'the first pass after the start purges the two old ones');
  const alice = await connect(second, 'alice');
  t.teardown(() => alice.stop());
  t.same((await query(alice)).bodies, ['an hour old'], 'only what is younger than a day is left');
});

/**
 * 1,000 messages from alice: to bob (even) and carol (odd); paging and filters over them. With
 * count_limit 600, the whole archive is not counted, a conversation (500) is.
 */
async function pagingScenario(t: Test, overrides: Record<string, unknown> = {}) {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { mam: { count_limit: 600 } }, ...overrides });
  for (const u of ['alice', 'bob', 'carol']) await ts.addUser(u);
  const alice = await connect(ts, 'alice', { resource: 'a' });
  const bob = await connect(ts, 'bob', { resource: 'b' });
  const carol = await connect(ts, 'carol', { resource: 'c' });
  t.teardown(() => Promise.all([alice, bob, carol].map((c) => c.stop())));

  const N = 1000;
  const started = Date.now();
  const sentIds: string[] = [];
  for (let i = 0; i < N; i++) {
    const id = `pg${i}`;
    sentIds.push(id);
    await alice.send(chat(i % 2 === 0 ? 'bob@localhost' : 'carol@localhost', id, `message ${i}`));
  }
  await received(
    bob,
    sentIds.filter((_, i) => i % 2 === 0),
  );
  await received(
    carol,
    sentIds.filter((_, i) => i % 2 === 1),
  );
  t.comment(`1,000 messages sent, delivered and archived twice in ${Date.now() - started} ms`);
  const body = (i: number) => `message ${i}`;
  const range = (from: number, to: number, step = 1) => Array.from({ length: Math.ceil((to - from) / step) }, (_, k) => body(from + k * step));

  t.test('forwards, page by page', async (t) => {
    const bodies: (string | undefined)[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const p = await query(alice, { max: 100, after });
      pages++;
      t.equal(p.count, undefined, 'more than count_limit: no count');
      t.equal(p.firstIndex, undefined, 'nor index');
      t.equal(p.first, p.ids[0]);
      t.equal(p.last, p.ids[p.ids.length - 1]);
      bodies.push(...p.bodies);
      if (p.complete === 'true') break;
      t.equal(p.complete, 'false');
      after = p.last;
    }
    t.equal(pages, 10);
    t.same(bodies, range(0, N), 'all, in order, once');
  });

  t.test('backwards from the last page', async (t) => {
    const bodies: (string | undefined)[] = [];
    let before = '';
    let pages = 0;
    for (;;) {
      const p = await query(alice, { max: 100, before });
      pages++;
      t.equal(p.firstIndex, undefined);
      bodies.unshift(...p.bodies);
      if (p.complete === 'true') break;
      before = p.first!;
    }
    t.equal(pages, 10);
    t.same(bodies, range(0, N), 'each page chronological, pages newest first');
  });

  t.test('flip-page: the same page, newest first', async (t) => {
    const plain = await query(alice, { max: 20, before: '' });
    const flipped = await query(alice, { max: 20, before: '', flip: true });
    t.same(flipped.ids, [...plain.ids].reverse());
    t.equal(flipped.first, plain.first, 'first/last still name the chronological ends');
    t.equal(flipped.last, plain.last);
    t.equal(flipped.complete, 'false');
  });

  t.test('with: one conversation, and in the other archive', async (t) => {
    const withCarol = await query(alice, { with: 'carol@localhost', max: 250 });
    t.equal(withCarol.count, String(N / 2), 'a conversation within count_limit is counted');
    t.equal(withCarol.firstIndex, '0');
    t.same(withCarol.bodies, range(1, 251 * 2 - 1, 2).slice(0, 250));
    t.equal(withCarol.complete, 'false');
    const rest = await query(alice, { with: 'carol@localhost', max: 250, after: withCarol.last });
    t.equal(rest.complete, 'true');
    t.equal(rest.firstIndex, '250');
    t.same([...withCarol.bodies, ...rest.bodies], range(1, N, 2));
    const bobs = await query(bob, { with: 'alice@localhost', max: 250, before: '' });
    t.same(bobs.bodies, range(N - 500, N, 2), 'bob’s side, the last 250');
    const full = await query(bob, { with: alice.jid, max: 1, before: '' });
    t.same(full.bodies, [body(N - 2)], 'a full JID matches that resource');
    t.equal((await query(bob, { with: 'alice@localhost/elsewhere' })).ids.length, 0, 'not another one');
    t.equal((await query(bob, { with: 'carol@localhost' })).count, '0');
  });

  t.test('start and end', async (t) => {
    // The archive times, from the delays of the first 250 results.
    const stampOf = (r: Element) => r.getChild('result', MAM)!.getChild('forwarded', FORWARD)!.getChild('delay', DELAY)!.attrs.stamp!;
    const p = await query(alice, { max: 250 });
    const stamps = p.results.map(stampOf);
    const start = stamps[10]!;
    const end = stamps[60]!;
    t.ok(stamps[249]! > end, 'the range ends within these 250');
    const expected = p.bodies.filter((_, i) => stamps[i]! >= start && stamps[i]! <= end);
    t.ok(expected.length >= 51, 'both ends included');
    const inRange = await query(alice, { start, end, max: 250 });
    t.same(inRange.bodies, expected, 'exactly the messages from start to end, inclusive');
    t.equal(inRange.complete, 'true');
    const half = await query(alice, { start, end, max: 10, before: '' });
    t.same(half.bodies, expected.slice(-10), 'the last page of the range');
    const future = await query(alice, { start: new Date(Date.now() + 3_600_000).toISOString() });
    t.same(future.ids, []);
    t.equal(future.complete, 'true');
    t.equal(future.count, '0');
  });

  t.test('ids, after-id and before-id', async (t) => {
    const first = await query(alice, { max: 30 });
    const picked = await query(alice, { ids: [first.ids[20]!, first.ids[5]!] });
    t.same(picked.ids, [first.ids[5], first.ids[20]], 'archive order');
    t.equal(picked.complete, 'true');
    const between = await query(alice, { afterId: first.ids[5], beforeId: first.ids[20] });
    t.same(between.ids, first.ids.slice(6, 20));
    t.equal(between.count, '14');
    const lastOfBetween = await query(alice, { afterId: first.ids[5], beforeId: first.ids[20], before: '', max: 4 });
    t.same(lastOfBetween.ids, first.ids.slice(16, 20));
    t.equal(lastOfBetween.firstIndex, '10');
  });

  t.test('the page size is capped by max_page', async (t) => {
    const big = await query(alice, { max: 5000 });
    t.equal(big.ids.length, 250);
    t.equal(big.complete, 'false');
    const none = await query(alice, {});
    t.equal(none.ids.length, 250, 'no <max/>: a page of max_page');
    const count = await query(alice, { max: 0, with: 'bob@localhost' });
    t.same(count.ids, []);
    t.equal(count.count, String(N / 2), 'max 0: just the count');
    const last = await query(alice, { with: 'bob@localhost', before: '', max: 10 });
    t.equal(last.firstIndex, String(N / 2 - 10), 'the index of the last page');
  });
}

t.test('paging on SQLite', (t) => pagingScenario(t));

t.test('paging on PostgreSQL', (t) => onPostgres(t, 'starling_mam_it', (storage) => pagingScenario(t, storage)));
