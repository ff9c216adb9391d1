// XEP-0227 export and import (`starling export`, `starling import`): a server populated by real
// clients is exported with the CLI, imported into an empty data directory (and into
// PostgreSQL, from an export split with XInclude), and its users log in with their old
// passwords and find everything; exporting the imported data gives the same file again.
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Element } from '@xmpp/xml';
import { startTestServer, PASSWORD, type TestServer } from '../helpers/harness.js';
import { connect, xml, type TestClient } from '../helpers/clients.js';
import { configDir, runStarling } from '../helpers/cli.js';
import { iq, items, itemsOf, publish } from '../helpers/pubsub.js';
import { mamQuery } from '../helpers/mam.js';
import { onPostgres } from '../helpers/databases.js';

const ROSTER = 'jabber:iq:roster';
const PRIVATE = 'jabber:iq:private';
const BOOKMARKS = 'urn:xmpp:bookmarks:1';
const NOTES = 'eu.example.notes';

const dataDirToml = (dir: string, storage = '') => `data_dir = "${dir}/data"\n[accounts]\nscram_iterations = 4096\n${storage}`;

const isRosterPush = (contact: string, subscription: string) => (el: Element) =>
  el.name === 'iq' &&
  el.attrs.type === 'set' &&
  el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === contact &&
  el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === subscription;
const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', {}, body));
const isChat = (body: string) => (el: Element) => el.name === 'message' && el.getChildText('body') === body;

/** Fills a server the way clients do: roster, subscriptions, vCard, private XML, bookmarks, PEP, offline, archive. */
async function populate(t: Test, alice: TestClient, bob: TestClient): Promise<void> {
  await iq(alice, 'get', xml('query', { xmlns: ROSTER })); // an interested resource: roster pushes come
  await iq(alice, 'set', xml('query', { xmlns: ROSTER }, xml('item', { jid: 'bob@localhost', name: 'Bobby' }, xml('group', {}, 'Friends'), xml('group', {}, 'Work'))));
  await alice.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
  await bob.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
  await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
  await alice.next(isRosterPush('bob@localhost', 'to'));
  // carol never answers: alice's item asks, carol keeps a pending request.
  await alice.send(xml('presence', { to: 'carol@localhost', type: 'subscribe' }));
  await iq(alice, 'set', xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice Liddell'), xml('NICKNAME', {}, 'al')));
  await iq(alice, 'set', xml('query', { xmlns: PRIVATE }, xml('prefs', { xmlns: 'exodus:prefs' }, xml('defaultnick', {}, 'Alice'))));
  // A XEP-0048 client's bookmarks, which the server keeps as XEP-0402 ones in PEP.
  const conference = xml('conference', { jid: 'tea@conference.localhost', name: 'Tea party', autojoin: 'true' }, xml('nick', {}, 'al'));
  await iq(alice, 'set', xml('query', { xmlns: PRIVATE }, xml('storage', { xmlns: 'storage:bookmarks' }, conference)));
  t.equal((await publish(alice, NOTES, xml('note', { xmlns: NOTES }, 'down the rabbit hole'), { id: 'n1' })).attrs.type, 'result');
  await bob.send(chat('carol@localhost', 'for carol, later'));
  await alice.send(chat('bob@localhost', 'hello bob'));
  await bob.next(isChat('hello bob'));
  await bob.send(chat('alice@localhost', 'hello alice'));
  await alice.next(isChat('hello alice'));
  await Promise.all([alice.roundTrip(), bob.roundTrip()]);
}

/** What the users find after the import, with their old passwords. */
async function verify(t: Test, port: TestServer): Promise<void> {
  const alice = await connect(port, 'alice', { password: PASSWORD });
  t.teardown(() => alice.stop());
  const roster = (await iq(alice, 'get', xml('query', { xmlns: ROSTER }))).getChild('query', ROSTER)!.getChildren('item');
  const bob = roster.find((i) => i.attrs.jid === 'bob@localhost');
  t.same(
    { name: bob?.attrs.name, subscription: bob?.attrs.subscription, groups: bob?.getChildren('group').map((g) => g.text()) },
    { name: 'Bobby', subscription: 'to', groups: ['Friends', 'Work'] },
    "alice's roster: bob with his name, groups and subscription",
  );
  const carol = roster.find((i) => i.attrs.jid === 'carol@localhost');
  t.same({ subscription: carol?.attrs.subscription, ask: carol?.attrs.ask }, { subscription: 'none', ask: 'subscribe' }, 'carol, asked');
  t.equal((await iq(alice, 'get', xml('vCard', { xmlns: 'vcard-temp' }))).getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Alice Liddell', 'her vCard');
  const prefs = await iq(alice, 'get', xml('query', { xmlns: PRIVATE }, xml('prefs', { xmlns: 'exodus:prefs' })));
  t.equal(prefs.getChild('query')?.getChild('prefs', 'exodus:prefs')?.getChildText('defaultnick'), 'Alice', 'her private XML');
  const legacy = await iq(alice, 'get', xml('query', { xmlns: PRIVATE }, xml('storage', { xmlns: 'storage:bookmarks' })));
  t.equal(legacy.getChild('query')?.getChild('storage', 'storage:bookmarks')?.getChild('conference')?.attrs.jid, 'tea@conference.localhost', 'her bookmarks (XEP-0048)');
  t.same(
    itemsOf(await items(alice, undefined, BOOKMARKS)).map((i) => i.attrs.id),
    ['tea@conference.localhost'],
    'her bookmarks (XEP-0402)',
  );
  t.same(
    itemsOf(await items(alice, undefined, NOTES)).map((i) => [i.attrs.id, i.getChildText('note', NOTES)]),
    [['n1', 'down the rabbit hole']],
    'her PEP item',
  );
  t.same((await mamQuery(alice)).bodies, ['hello bob', 'hello alice'], 'her archive');
  const carolClient = await connect(port, 'carol', { password: PASSWORD });
  t.teardown(() => carolClient.stop());
  const offline = await carolClient.next(isChat('for carol, later'));
  t.equal(offline.attrs.from?.split('/')[0], 'bob@localhost', "carol's offline message, from bob");
  t.ok(offline.getChild('delay', 'urn:xmpp:delay'), 'with its delay');
  await carolClient.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === 'alice@localhost');
  t.pass("and alice's pending subscription request");
}

// One server, populated by clients and stopped, exported as one file and as a directory.
const a = configDir(t, 'pie-a', (dir) => dataDirToml(dir));
const file = path.join(a.dir, 'export.xml');
const dir = path.join(a.dir, 'export');

t.before(async () => {
  const source = await startTestServer(t, { data_dir: `${a.dir}/data` });
  for (const user of ['alice', 'bob', 'carol']) await source.addUser(user);
  const alice = await connect(source, 'alice');
  const bob = await connect(source, 'bob');
  await populate(t, alice, bob);
  await Promise.all([alice.stop(), bob.stop()]);
  await source.stop();
});

t.test('export, import into an empty data directory, log in, find everything', async (t) => {
  const exported = runStarling(['export', file, '--config', a.config]);
  t.equal(exported.code, 0, exported.err);
  t.match(exported.out, /exported 3 accounts of localhost/);
  const text = readFileSync(file, 'utf8');
  t.notMatch(text, /password=/, 'SCRAM keys, no password');
  t.match(text, /<scram-credentials xmlns="urn:xmpp:pie:0#scram" mechanism="SCRAM-SHA-256">/);

  const b = configDir(t, 'pie-b', (dir) => dataDirToml(dir));
  const imported = runStarling(['import', file, '--config', b.config]);
  t.equal(imported.code, 0, imported.err);
  t.match(imported.out, /imported 3 accounts/);

  const again = path.join(b.dir, 'again.xml');
  t.equal(runStarling(['export', again, '--config', b.config]).code, 0);
  t.equal(readFileSync(again, 'utf8'), text, 'exporting the imported data gives the same file: nothing lost');

  const twice = runStarling(['import', file, '--config', b.config]);
  t.equal(twice.code, 1, 'importing existing accounts fails');
  t.match(twice.err, /alice@localhost: exists already; not imported/, 'naming each');

  const target = await startTestServer(t, { data_dir: `${b.dir}/data` });
  await verify(t, target);
});

t.test('an export split by host with XInclude, imported into PostgreSQL', async (t) => {
  const exported = runStarling(['export', `${dir}/`, '--config', a.config]);
  t.equal(exported.code, 0, exported.err);
  t.match(readFileSync(path.join(dir, 'index.xml'), 'utf8'), /<xi:include href="localhost.xml"\/>/, 'an index including the host file');

  await onPostgres(t, 'pie', async (overrides) => {
    const storage = overrides.storage as { postgres_url: string; postgres_schema: string };
    const toml = `[storage]\ndriver = "postgres"\npostgres_url = "${storage.postgres_url}"\npostgres_schema = "${storage.postgres_schema}"\n`;
    const b = configDir(t, 'pie-d', (d) => dataDirToml(d, toml));
    const imported = runStarling(['import', path.join(dir, 'index.xml'), '--config', b.config]);
    t.equal(imported.code, 0, imported.err);
    const again = path.join(b.dir, 'again.xml');
    t.equal(runStarling(['export', again, '--config', b.config]).code, 0);
    t.equal(readFileSync(again, 'utf8'), readFileSync(file, 'utf8'), 'the same data as exported from SQLite');
    const target = await startTestServer(t, { ...overrides, data_dir: `${b.dir}/data` });
    await verify(t, target);
  });
});

t.test('bad input: one line, no stack trace; no import while a server runs', async (t) => {
  const e = configDir(t, 'pie-e', (dir) => dataDirToml(dir));
  const cases: [string, string, RegExp][] = [
    ['truncated.xml', "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='x'>", /truncated\.xml: not an XML document this importer reads/],
    ['include.xml', "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'><xi:include href='missing.xml'/></server-data>", /missing\.xml: ENOENT/],
  ];
  for (const [name, content, expected] of cases) {
    const file = path.join(e.dir, name);
    writeFileSync(file, content);
    const r = runStarling(['import', file, '--config', e.config]);
    t.equal(r.code, 1, name);
    t.match(r.err, expected, name);
    t.equal(r.err.trim().split('\n').length, 1, `${name}: one line`);
  }
  const nopass = path.join(e.dir, 'nopass.xml');
  writeFileSync(nopass, "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='ghost'/><user name='mary' password='a fine password'/></host></server-data>");
  const r = runStarling(['import', nopass, '--config', e.config]);
  t.equal(r.code, 1);
  t.match(r.err, /ghost@localhost: not imported: it has neither SCRAM credentials nor a password/);
  t.match(r.out, /imported 1 account; 1 not imported/, 'the others are imported');

  await startTestServer(t, { data_dir: `${e.dir}/data` });
  const running = runStarling(['import', nopass, '--config', e.config]);
  t.equal(running.code, 1);
  t.match(running.err, /^starling import: a server is running with the data directory .*: stop it first\n$/, 'not while a server runs on the data directory');
});
