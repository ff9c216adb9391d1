// The anti_spam module over real sockets: XEP-0377 reports with a XEP-0191 block (kept on
// SQLite and PostgreSQL, the admins told, listed by ad-hoc command and `starling reports`, a
// bad reason refused), blocking strangers (a stranger bounced, a contact delivered, a
// subscription request let through, the exemption once the user wrote first, each account's
// own choice by ad-hoc command and by `starling block-strangers`, the local-user policy), and
// new accounts held to a pace when they write to strangers.
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { connect, errorCondition, nothingArrived, xml, type TestClient } from '../helpers/clients.js';
import { DOMAIN, startTestServer, type TestServer } from '../helpers/harness.js';
import { configDir, runStarling } from '../helpers/cli.js';
import { onPostgres } from '../helpers/databases.js';
import { ReportStore, strangersChoice } from '../../modules/anti_spam/store.js';
import { SERVICE, createInstant, groupchatWith, join } from './muc-helpers.js';

const NS_BLOCKING = 'urn:xmpp:blocking';
const NS_REPORTING = 'urn:xmpp:reporting:1';
const NS_COMMANDS = 'http://jabber.org/protocol/commands';
const NS_DATA = 'jabber:x:data';
const NS_ROSTER = 'jabber:iq:roster';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'blocking', 'adhoc', 'anti_spam'];
const REPORTS_NODE = 'urn:starling:anti-spam:reports';
const STRANGERS_NODE = 'urn:starling:anti-spam:block-strangers';

let ids = 0;
async function iq(client: TestClient, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = `as-${++ids}`;
  await client.send(xml('iq', to === undefined ? { type, id } : { type, id, to }, payload));
  return client.next((el) => el.name === 'iq' && el.attrs.id === id);
}

const report = (reason: string, text?: string, ...stanzaIds: string[]) =>
  xml(
    'report',
    { xmlns: NS_REPORTING, reason },
    ...(text === undefined ? [] : [xml('text', {}, text)]),
    ...stanzaIds.map((id) => xml('stanza-id', { xmlns: 'urn:xmpp:sid:0', by: 'alice@localhost', id })),
  );
const blockWith = (client: TestClient, jid: string, ...children: Element[]) => iq(client, 'set', xml('block', { xmlns: NS_BLOCKING }, xml('item', { jid }, ...children)));
const blocklist = async (client: TestClient) =>
  (await iq(client, 'get', xml('blocklist', { xmlns: NS_BLOCKING })))
    .getChild('blocklist', NS_BLOCKING)!
    .getChildren('item')
    .map((i) => i.attrs.jid);

const command = (client: TestClient, attrs: Record<string, string>, ...children: Element[]) =>
  iq(client, 'set', xml('command', { xmlns: NS_COMMANDS, ...attrs }, ...children), DOMAIN);
const fieldValues = (x: Element | undefined, name: string) =>
  x
    ?.getChildren('field')
    .find((f) => f.attrs.var === name)
    ?.getChildren('value')
    .map((v) => v.getText()) ?? [];

/** Runs the block-strangers command: the value it showed, then the one submitted. */
async function setBlockStrangers(t: Test, client: TestClient, block: boolean): Promise<string[]> {
  const first = (await command(client, { node: STRANGERS_NODE, action: 'execute' })).getChild('command', NS_COMMANDS)!;
  t.equal(first.attrs.status, 'executing');
  const shown = fieldValues(first.getChild('x', NS_DATA), 'block_strangers');
  const submit = xml(
    'x',
    { xmlns: NS_DATA, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'urn:starling:anti-spam')),
    xml('field', { var: 'block_strangers' }, xml('value', {}, block ? '1' : '0')),
  );
  const done = await command(client, { node: STRANGERS_NODE, sessionid: first.attrs.sessionid!, action: 'complete' }, submit);
  t.equal(done.attrs.type, 'result', errorCondition(done) ?? 'completed');
  return shown;
}

const chat = (to: string, text: string) => xml('message', { to, type: 'chat', id: `m-${++ids}` }, xml('body', {}, text));
const isBody = (text: string) => (el: Element) => el.name === 'message' && el.attrs.type !== 'error' && el.getChildText('body') === text;
const isError = (el: Element) => el.attrs.type === 'error';

/** `a` and `b` subscribe to each other's presence (subscription both). */
async function befriend(a: TestClient, b: TestClient): Promise<void> {
  const bare = (c: TestClient) => c.jid.split('/')[0]!;
  for (const c of [a, b]) await iq(c, 'get', xml('query', { xmlns: NS_ROSTER }));
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    await from.send(xml('presence', { to: bare(to), type: 'subscribe' }));
    await to.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === bare(from));
    await to.send(xml('presence', { to: bare(from), type: 'subscribed' }));
    await from.next((el) => el.name === 'presence' && el.attrs.type === 'subscribed' && el.attrs.from === bare(to));
  }
  const both = (jid: string) => (el: Element) =>
    el.name === 'iq' && el.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.subscription === 'both' && el.getChild('query', NS_ROSTER)?.getChild('item')?.attrs.jid === jid;
  await a.next(both(bare(b)));
  await b.next(both(bare(a)));
}

async function users(ts: TestServer, t: Test, ...names: string[]): Promise<TestClient[]> {
  const clients: TestClient[] = [];
  for (const name of names) {
    await ts.addUser(name);
    const c = await connect(ts, name);
    t.teardown(() => c.stop());
    clients.push(c);
  }
  return clients;
}

/** A report with a block: recorded, the admin told; a bad reason refused; what ReportStore then lists. */
async function reportScenario(t: Test, ts: TestServer): Promise<void> {
  const [alice, admin] = await users(ts, t, 'alice', 'admin');
  const reply = await blockWith(alice, 'spammer@example.net', report('urn:xmpp:reporting:spam', 'buy cheap watches', 'sid-1', 'sid-2'));
  t.equal(reply.attrs.type, 'result', 'the block with a report is accepted');
  t.same(await blocklist(alice), ['spammer@example.net'], 'and the block is made');
  const told = await admin.next((el) => el.name === 'message' && el.attrs.from === DOMAIN);
  t.equal(told.attrs.type, 'chat');
  t.match(told.getChildText('body'), /alice@localhost reported spammer@example\.net for spam.*buy cheap watches.*sid-1, sid-2/, 'the admin is told who, whom, why');

  const bad = await blockWith(alice, 'other@example.net', report('urn:xmpp:reporting:nonsense'));
  t.equal(errorCondition(bad), 'bad-request', 'an unknown reason: bad-request');
  t.same(await blocklist(alice), ['spammer@example.net'], 'and nothing is blocked');
  t.ok(await nothingArrived(admin, (el) => el.name === 'message', alice), 'nor is the admin told');

  const stored = await (await ReportStore.open(ts.server.core.storage)).list(DOMAIN);
  t.equal(stored.length, 1);
  t.match(stored[0], {
    reporter: 'alice@localhost',
    reported: 'spammer@example.net',
    reason: 'urn:xmpp:reporting:spam',
    text: 'buy cheap watches',
    stanzaIds: [
      { id: 'sid-1', by: 'alice@localhost' },
      { id: 'sid-2', by: 'alice@localhost' },
    ],
  });
}

t.test('spam reports (XEP-0377), on SQLite', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    admins: ['admin@localhost'],
    // The admin's own block_strangers does not keep the server's message out.
    modules: { anti_spam: { block_strangers: true } },
  });
  await reportScenario(t, ts);
  const alice = await connect(ts, 'alice', { resource: 'second' });
  t.teardown(() => alice.stop());
  const admin = await connect(ts, 'admin', { resource: 'second' });
  t.teardown(() => admin.stop());

  t.test('advertised in the server disco#info', async (t) => {
    const info = await iq(alice, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), DOMAIN);
    const features = info
      .getChild('query')!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    for (const f of [NS_REPORTING, 'urn:xmpp:reporting:spam', 'urn:xmpp:reporting:abuse']) t.ok(features.includes(f), f);
  });

  t.test('listed to the admin by ad-hoc command; anyone else is forbidden', async (t) => {
    const done = (await command(admin, { node: REPORTS_NODE, action: 'execute' })).getChild('command', NS_COMMANDS)!;
    t.equal(done.attrs.status, 'completed');
    const lines = fieldValues(done.getChild('x', NS_DATA), 'reports');
    t.equal(lines.length, 1);
    t.match(lines[0], /alice@localhost reported spammer@example\.net for spam/);
    const refused = await command(alice, { node: REPORTS_NODE, action: 'execute' });
    t.equal(errorCondition(refused), 'forbidden', 'a user who is no admin: forbidden');
  });

  t.test('listed by `starling reports`', async (t) => {
    const { dir, config } = configDir(t, 'reports', () => `data_dir = "${ts.dataDir}"\n[log]\nformat = "json"\n`);
    const r = runStarling(['reports', DOMAIN, '--config', config], { cwd: dir });
    t.equal(r.code, 0, r.err);
    t.match(r.out, /alice@localhost reported spammer@example\.net for spam: "buy cheap watches"/);
    const unknown = runStarling(['reports', 'elsewhere.example', '--config', config], { cwd: dir });
    t.equal(unknown.code, 1);
    t.match(unknown.err, /elsewhere\.example is not a host/);
  });
});

t.test('spam reports on PostgreSQL', (t) =>
  onPostgres(t, 'starling_antispam', async (storage) => {
    const ts = await startTestServer(t, { ...storage, modules_enabled: MODULES, admins: ['admin@localhost'] });
    await reportScenario(t, ts);
  }),
);

t.test('blocking strangers', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { anti_spam: { block_strangers: true } } });
  const [alice, bob, carol, dave] = await users(ts, t, 'alice', 'bob', 'carol', 'dave');

  t.test('a subscription request from a stranger is delivered, and the contact then writes', async (t) => {
    await befriend(alice, bob);
    await bob.send(chat('alice@localhost', 'hello friend'));
    t.ok(await alice.next(isBody('hello friend')), 'a contact is delivered');
  });

  t.test('a stranger is bounced: messages and IQs, and its presence dropped', async (t) => {
    await carol.send(chat('alice@localhost', 'buy now'));
    const bounced = await carol.next((el) => el.name === 'message' && isError(el));
    t.equal(errorCondition(bounced), 'service-unavailable');
    await carol.send(chat(alice.jid, 'buy now, full'));
    t.equal(errorCondition(await carol.next((el) => el.name === 'message' && isError(el))), 'service-unavailable', 'to the full JID too');
    const version = await iq(carol, 'get', xml('query', { xmlns: 'jabber:iq:version' }), alice.jid);
    t.equal(errorCondition(version), 'service-unavailable', 'an IQ get to the client');
    await carol.send(xml('presence', { to: alice.jid }));
    t.ok(await nothingArrived(alice, (el) => el.attrs.from?.startsWith('carol@') ?? false, carol), 'nothing reached alice');
  });

  t.test('a stranger may write once the user wrote to it', async (t) => {
    // dave (who accepts strangers) is a stranger to alice.
    await strangersChoice(ts.server.core.storage).set(DOMAIN, 'dave', { block: false });
    await dave.send(chat('alice@localhost', 'before'));
    t.equal(errorCondition(await dave.next((el) => el.name === 'message' && isError(el))), 'service-unavailable', 'a stranger first');
    await alice.send(chat('dave@localhost', 'hi dave'));
    await dave.next(isBody('hi dave'));
    await dave.send(chat('alice@localhost', 'hi alice'));
    t.ok(await alice.next(isBody('hi alice')), 'the answer is delivered');
  });

  t.test('a stranger may ask to become a contact', async (t) => {
    await carol.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    t.ok(await alice.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === 'carol@localhost'));
  });

  t.test("an account's own choice, by ad-hoc command", async (t) => {
    t.same(await setBlockStrangers(t, alice, false), ['1'], "the form shows the host's default");
    await carol.send(chat('alice@localhost', 'now allowed'));
    t.ok(await alice.next(isBody('now allowed')), 'opted out: a stranger is delivered');
    t.same(await setBlockStrangers(t, alice, true), ['0'], 'the form shows the choice');
    await carol.send(chat('alice@localhost', 'refused again'));
    t.equal(errorCondition(await carol.next((el) => el.name === 'message' && isError(el))), 'service-unavailable', 'opted in again');
    t.same(await strangersChoice(ts.server.core.storage).get(DOMAIN, 'alice'), { block: true }, 'kept');
  });

  t.test('an admin sets it for an account by `starling block-strangers`', async (t) => {
    await ts.addUser('frank');
    const { dir, config } = configDir(t, 'strangers', () => `data_dir = "${ts.dataDir}"\n[log]\nformat = "json"\n`);
    const r = runStarling(['block-strangers', 'frank@localhost', 'off', '--config', config], { cwd: dir });
    t.equal(r.code, 0, r.err);
    t.same(await strangersChoice(ts.server.core.storage).get(DOMAIN, 'frank'), { block: false });
    const frank = await connect(ts, 'frank');
    t.teardown(() => frank.stop());
    await carol.send(chat('frank@localhost', 'hello frank'));
    t.ok(await frank.next(isBody('hello frank')), 'frank accepts strangers');
    const bad = runStarling(['block-strangers', 'nobody@localhost', 'on', '--config', config], { cwd: dir });
    t.equal(bad.code, 1);
    t.match(bad.err, /there is no account nobody@localhost/);
    t.notMatch(bad.err, /\n\s+at /, 'one line, no stack trace');
  });
});

t.test('allow_local_users: users of the server are no strangers', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { anti_spam: { block_strangers: true, allow_local_users: true } } });
  const [alice, carol] = await users(ts, t, 'alice', 'carol');
  await carol.send(chat('alice@localhost', 'neighbour'));
  t.ok(await alice.next(isBody('neighbour')));
});

const NEW_ACCOUNT_PACE = { new_account_hours: 24, new_account_burst: 2, new_account_messages_per_second: 0.001 };

t.test('where registration is closed (or by invitation), new accounts are not held', async (t) => {
  for (const register of [{ allow_registration: false }, { allow_registration: true, require_invitation: true }]) {
    const ts = await startTestServer(t, { modules_enabled: [...MODULES, 'register'], modules: { anti_spam: NEW_ACCOUNT_PACE, register } });
    const [novice, target] = await users(ts, t, 'novice', 'target');
    for (const n of [1, 2, 3, 4]) {
      await novice.send(chat('target@localhost', `n${n}`));
      await target.next(isBody(`n${n}`));
    }
    t.pass(`registration ${JSON.stringify(register)}: past the burst, still delivered`);
  }
});

t.test('where anyone may register, new accounts write to strangers at a pace', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: [...MODULES, 'register'],
    modules: { anti_spam: NEW_ACCOUNT_PACE, register: { allow_registration: true } },
  });
  await ts.addUser('veteran');
  await ts.server.core.storage.db
    .updateTable('account')
    .set({ created_at: Date.now() - 48 * 3_600_000 })
    .where('host', '=', DOMAIN)
    .where('username', '=', 'veteran')
    .execute();
  const [novice, friend, target] = await users(ts, t, 'novice', 'friend', 'target');
  const veteran = await connect(ts, 'veteran');
  t.teardown(() => veteran.stop());
  await befriend(novice, friend);

  for (const n of [1, 2]) {
    await novice.send(chat('target@localhost', `n${n}`));
    await target.next(isBody(`n${n}`));
  }
  await novice.send(chat('target@localhost', 'n3'));
  const refused = await novice.next((el) => el.name === 'message' && isError(el));
  t.equal(errorCondition(refused), 'policy-violation', 'past the burst: policy-violation');
  t.equal(refused.getChild('error')!.attrs.type, 'wait', 'of type wait');
  t.ok(await nothingArrived(target, isBody('n3'), novice));
  await novice.send(chat('friend@localhost', 'to a contact'));
  t.ok(await friend.next(isBody('to a contact')), 'contacts are not counted');
  await novice.send(xml('message', { to: 'target@localhost', type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })));
  t.ok(await target.next((el) => el.name === 'message' && !!el.getChild('composing')), 'a chat state without a body is not counted');
  for (const n of [1, 2, 3]) {
    await veteran.send(chat('target@localhost', `v${n}`));
    await target.next(isBody(`v${n}`));
  }
  t.pass('an older account is not held');
});

t.test('directed presence (a room joined) lets its sender write until it is over', async (t) => {
  // Without the exemption of recent correspondents, only directed presence counts.
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { anti_spam: { block_strangers: true, recent_contact_minutes: 0 } } });
  const [alice, room] = await users(ts, t, 'alice', 'room');
  await strangersChoice(ts.server.core.storage).set(DOMAIN, 'room', { block: false });
  await alice.send(chat(room.jid, 'no presence yet'));
  await room.next(isBody('no presence yet'));
  await room.send(chat(alice.jid, 'refused'));
  t.equal(errorCondition(await room.next((el) => el.name === 'message' && isError(el))), 'service-unavailable', 'writing alone is forgotten at once');
  await alice.send(xml('presence', { to: room.jid }));
  await room.next((el) => el.name === 'presence' && el.attrs.from === alice.jid);
  await room.send(chat(alice.jid, 'in the room'));
  t.ok(await alice.next(isBody('in the room')), 'after directed presence: delivered');
  await alice.send(xml('presence', { to: room.jid, type: 'unavailable' }));
  await room.next((el) => el.name === 'presence' && el.attrs.type === 'unavailable' && el.attrs.from === alice.jid);
  await room.send(chat(alice.jid, 'left'));
  t.equal(errorCondition(await room.next((el) => el.name === 'message' && isError(el))), 'service-unavailable', 'after unavailable: a stranger again');
});

t.test('reports_per_hour: past it the block is made, the report dropped', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, admins: ['admin@localhost'], modules: { anti_spam: { reports_per_hour: 1 } } });
  const [alice, admin] = await users(ts, t, 'alice', 'admin');
  t.equal((await blockWith(alice, 'one@example.net', report('urn:xmpp:reporting:abuse'))).attrs.type, 'result');
  t.match((await admin.next((el) => el.name === 'message' && el.attrs.from === DOMAIN)).getChildText('body'), /reported one@example\.net for abuse/);
  t.equal((await blockWith(alice, 'two@example.net', report('urn:xmpp:reporting:spam'))).attrs.type, 'result', 'the second block is answered');
  t.same(await blocklist(alice), ['one@example.net', 'two@example.net'], 'and made');
  t.ok(await nothingArrived(admin, (el) => el.name === 'message', alice), 'the admin is not told again');
  t.same(
    (await (await ReportStore.open(ts.server.core.storage)).list(DOMAIN)).map((r) => r.reported),
    ['one@example.net'],
    'one report kept',
  );
});

t.test('a room on the server is no stranger: its messages and private messages reach the occupant', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: [...MODULES, 'muc'], modules: { anti_spam: { block_strangers: true } } });
  const [alice, bob] = await users(ts, t, 'alice', 'bob');
  const room = `lobby@${SERVICE}`;
  await createInstant(bob, room, 'bob');
  await join(alice, room, 'alice');
  await bob.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, 'hello room')));
  t.ok(await alice.next(groupchatWith('hello room')), 'groupchat');
  await bob.send(chat(`${room}/alice`, 'psst'));
  const pm = await alice.next(isBody('psst'));
  t.equal(pm.attrs.from, `${room}/bob`, 'a private message from an occupant');
  await bob.send(chat('alice@localhost', 'direct'));
  t.equal(errorCondition(await bob.next((el) => el.name === 'message' && isError(el))), 'service-unavailable', 'but bob himself is a stranger');
});
