// For the XEP-0227 import runs (conformance/prosody/xep0227.test.ts, conformance/ejabberd/
// xep0227.test.ts): accounts on another server filled by real clients (a roster with groups
// and a subscription, a vCard), then their export imported into a fresh Starling with the CLI
// and checked by the same users logging in there with their old passwords.
import type { Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer } from '../../test/helpers/harness.js';
import { connect, startClient, xml, xmppClient, type TestClient } from '../../test/helpers/clients.js';
import { configDir, runStarling } from '../../test/helpers/cli.js';

const ROSTER = 'jabber:iq:roster';
export const DOMAIN = 'localhost';
export const USERS = { alice: 'alices old password', bob: 'bobs old password 2' };

let ids = 0;
async function iq(c: TestClient, type: 'get' | 'set', payload: Element): Promise<Element> {
  const id = `x${++ids}`;
  await c.send(xml('iq', { type, id }, payload));
  const answer = await c.next((el) => el.name === 'iq' && el.attrs.id === id, 10_000);
  if (answer.attrs.type !== 'result') throw new Error(`${payload.name} ${type}: ${answer.toString()}`);
  return answer;
}

async function client(port: number, user: keyof typeof USERS): Promise<TestClient> {
  return startClient(xmppClient({ service: `xmpp://127.0.0.1:${port}`, domain: DOMAIN, username: user, password: USERS[user] }), { timeoutMs: 10_000 });
}

/**
 * On the server at `port` (c2s, STARTTLS): alice puts bob in her roster (name, two groups) and
 * subscribes, bob approves (alice: to, bob: from); alice sets her vCard.
 */
export async function populatePeer(t: Test, port: number): Promise<void> {
  const alice = await client(port, 'alice');
  const bob = await client(port, 'bob');
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
  await iq(alice, 'get', xml('query', { xmlns: ROSTER }));
  await iq(alice, 'set', xml('query', { xmlns: ROSTER }, xml('item', { jid: `bob@${DOMAIN}`, name: 'Bobby' }, xml('group', {}, 'Friends'), xml('group', {}, 'Work'))));
  await alice.send(xml('presence', { to: `bob@${DOMAIN}`, type: 'subscribe' }));
  await bob.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe', 10_000);
  await bob.send(xml('presence', { to: `alice@${DOMAIN}`, type: 'subscribed' }));
  await alice.next((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === 'to', 10_000);
  await iq(alice, 'set', xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Alice Liddell')));
  await Promise.all([alice.roundTrip(), bob.roundTrip()]);
  await Promise.all([alice.stop(), bob.stop()]);
}

const NOTES = 'eu.example.notes';
const PRIVATE = 'jabber:iq:private';
const chat = (to: string, body: string) => xml('message', { to, type: 'chat', id: body.replace(/\W/g, '') }, xml('body', {}, body));

/**
 * More for a server with PEP, private XML storage and a message archive (Prosody's mod_pep,
 * mod_private, mod_mam): alice publishes a PEP item, stores private XML, and she and bob chat.
 */
export async function populateExtras(t: Test, port: number): Promise<void> {
  const alice = await client(port, 'alice');
  const bob = await client(port, 'bob');
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
  const item = xml('item', { id: 'n1' }, xml('note', { xmlns: NOTES }, 'down the rabbit hole'));
  await iq(alice, 'set', xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('publish', { node: NOTES }, item)));
  await iq(alice, 'set', xml('query', { xmlns: PRIVATE }, xml('prefs', { xmlns: 'exodus:prefs' }, xml('defaultnick', {}, 'Alice'))));
  await alice.send(chat(`bob@${DOMAIN}`, 'hello bob'));
  await bob.next((el) => el.name === 'message' && el.getChildText('body') === 'hello bob', 10_000);
  await bob.send(chat(`alice@${DOMAIN}`, 'hello alice'));
  await alice.next((el) => el.name === 'message' && el.getChildText('body') === 'hello alice', 10_000);
  await Promise.all([alice.roundTrip(), bob.roundTrip()]);
  await Promise.all([alice.stop(), bob.stop()]);
}

/** What populateExtras left, seen by alice on Starling. */
export async function checkExtras(t: Test, alice: TestClient): Promise<void> {
  const items = await iq(alice, 'get', xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('items', { node: NOTES })));
  const got = items.getChild('pubsub')?.getChild('items')?.getChildren('item') ?? [];
  t.same(
    got.map((i) => [i.attrs.id, i.getChildText('note', NOTES)]),
    [['n1', 'down the rabbit hole']],
    "alice's PEP item",
  );
  const prefs = await iq(alice, 'get', xml('query', { xmlns: PRIVATE }, xml('prefs', { xmlns: 'exodus:prefs' })));
  t.equal(prefs.getChild('query')?.getChild('prefs', 'exodus:prefs')?.getChildText('defaultnick'), 'Alice', "alice's private XML");
  const id = `mam${++ids}`;
  await alice.send(xml('iq', { type: 'set', id }, xml('query', { xmlns: 'urn:xmpp:mam:2', queryid: id })));
  const bodies: string[] = [];
  for (;;) {
    const el = await alice.next((e) => (e.name === 'message' && e.getChild('result', 'urn:xmpp:mam:2')?.attrs.queryid === id) || (e.name === 'iq' && e.attrs.id === id), 10_000);
    if (el.name === 'iq') break;
    const body = el.getChild('result')?.getChild('forwarded')?.getChild('message')?.getChildText('body');
    if (body) bodies.push(body);
  }
  t.same(bodies, ['hello bob', 'hello alice'], "alice's archive, in order");
}

/**
 * `starling import <paths>` into a fresh data directory; alice and bob log in with their old
 * passwords and find their rosters and alice's vCard (and `extras`, with alice's client).
 */
export async function importAndCheck(t: Test, paths: string[], extras?: (alice: TestClient) => Promise<void>): Promise<void> {
  const c = configDir(t, 'pie-import', (dir) => `data_dir = "${dir}/data"\n`);
  const imported = runStarling(['import', ...paths, '--config', c.config]);
  t.equal(imported.code, 0, `starling import: ${imported.out}${imported.err}`);
  t.match(imported.out, /imported 2 accounts/);
  const ts = await startTestServer(t, { data_dir: `${c.dir}/data` });
  const alice = await connect(ts, 'alice', { password: USERS.alice });
  const bob = await connect(ts, 'bob', { password: USERS.bob });
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
  t.pass('alice and bob log in to Starling with their old passwords');
  const aliceRoster = (await iq(alice, 'get', xml('query', { xmlns: ROSTER }))).getChild('query', ROSTER)!.getChildren('item');
  t.same(
    aliceRoster.map((i) => ({
      jid: i.attrs.jid,
      name: i.attrs.name,
      subscription: i.attrs.subscription,
      groups: i
        .getChildren('group')
        .map((g) => g.text())
        .sort(),
    })),
    [{ jid: `bob@${DOMAIN}`, name: 'Bobby', subscription: 'to', groups: ['Friends', 'Work'] }],
    "alice's roster: bob, named, in his groups, subscribed to",
  );
  const bobRoster = (await iq(bob, 'get', xml('query', { xmlns: ROSTER }))).getChild('query', ROSTER)!.getChildren('item');
  t.same(
    bobRoster.map((i) => ({ jid: i.attrs.jid, subscription: i.attrs.subscription })),
    [{ jid: `alice@${DOMAIN}`, subscription: 'from' }],
    "bob's roster: alice, subscribed from",
  );
  const vcard = await iq(alice, 'get', xml('vCard', { xmlns: 'vcard-temp' }));
  t.equal(vcard.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Alice Liddell', "alice's vCard");
  if (extras) await extras(alice);
}
