// Real-time blocklists over federation, two Starlings: a.localhost hosts the list on its pubsub
// service (pubsub.a.localhost, node muc_bans_sha256), b.localhost subscribes to it from its own
// address ([modules.anti_spam] rtbl). Publishing the SHA-256 of a JID blocks its messages,
// subscription requests and MUC joins on b; retracting it lifts that; a restarted b applies
// the stored list at once and fetches it again (what was published while it was down).
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Element } from '@xmpp/xml';
import { parseJid } from '../../src/jid.js';
import { RtblKey, type RtblApi } from '../../modules/anti_spam/rtbl-api.js';
import { nothingArrived } from '../helpers/clients.js';
import { onPostgres } from '../helpers/databases.js';
import { cuttableProxy } from '../helpers/tcp-proxy.js';
import { PUBSUB, dataForm, iq } from '../helpers/pubsub.js';
import { FEDERATION_MODULES, connectTo, errorCondition, link, startFederated, xml, type FedClient, type FederatedServer } from './s2s-helpers.js';
import { createInstant, isSelfPresence, join } from './muc-helpers.js';

const SERVICE = 'pubsub.a.localhost';
const NODE = 'muc_bans_sha256';
const ROOM = 'lounge@conference.b.localhost';
const hash = (s: string) => createHash('sha256').update(s).digest('hex');
/** A list entry as xmppbl.org publishes them: the hash as the item id, a spam report as its payload. */
const reportItem = (jid: string) => xml('item', { id: hash(jid) }, xml('report', { xmlns: 'urn:xmpp:reporting:1', reason: 'urn:xmpp:reporting:spam' }));
const isBody = (body: string) => (el: Element) => el.name === 'message' && el.attrs.type !== 'error' && el.getChildText('body') === body;
const isSubscribe = (from: string) => (el: Element) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === from;

/** The list service of b (what the muc module asks on a join). */
const rtblOf = (b: FederatedServer): RtblApi => b.server.core.hosts.get(b.domain)!.service(RtblKey)!;

/** Resolves once `check` holds for b's lists (checked at each change). */
function listsUntil(b: FederatedServer, check: (api: RtblApi) => boolean): Promise<void> {
  const api = rtblOf(b);
  if (check(api)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (undo(), reject(new Error('the blocklist did not change as expected within 20 s'))), 20_000);
    const undo = api.onUpdate(() => {
      if (!check(api)) return;
      undo();
      clearTimeout(timer);
      resolve();
    });
  });
}

/** b's storage: `storage` overrides (PostgreSQL), else SQLite in its data directory. */
async function blocksLiftsSurvives(t: Test, storage: Record<string, unknown>) {
  const a = await startFederated(t, 'a.localhost', {}, { modules_enabled: [...FEDERATION_MODULES, 'caps', 'pubsub'] });
  const bDir = mkdtempSync(path.join(os.tmpdir(), 'starling-rtbl-'));
  t.teardown(() => rmSync(bDir, { recursive: true, force: true }));
  const startB = () =>
    startFederated(
      t,
      'b.localhost',
      {},
      {
        data_dir: bDir,
        ...storage,
        modules_enabled: [...FEDERATION_MODULES, 'muc', 'anti_spam'],
        modules: { anti_spam: { rtbl: [{ service: SERVICE, node: NODE }] } },
      },
    );
  /** Static routes between a and b, to a's pubsub service and to b's MUC service. */
  const connectB = (b: FederatedServer) => {
    link(a, b);
    b.server.s2s.addRoute(SERVICE, `127.0.0.1:${a.s2sPort}`);
    a.server.s2s.addRoute('conference.b.localhost', `127.0.0.1:${b.s2sPort}`);
  };

  for (const u of ['mod', 'spam', 'spam2', 'alice']) await a.user(u);
  const mod = await connectTo(a, 'mod');
  const spam = await connectTo(a, 'spam');
  const spam2 = await connectTo(a, 'spam2');
  const alice = await connectTo(a, 'alice');
  t.teardown(() => Promise.all([mod.stop(), spam.stop(), spam2.stop(), alice.stop()]));
  const pubsub = (...children: Element[]) => iq(mod, 'set', xml('pubsub', { xmlns: PUBSUB }, ...children), SERVICE);
  const create = await pubsub(xml('create', { node: NODE }), xml('configure', {}, dataForm(`${PUBSUB}#node_config`, { 'pubsub#max_items': 'max' })));
  t.equal(create.attrs.type, 'result', 'the list node is created on a') || t.comment(create.toString());
  const listJid = async (jid: string) => {
    const published = await pubsub(xml('publish', { node: NODE }, reportItem(jid)));
    t.equal(published.attrs.type, 'result', `${jid} listed`) || t.comment(published.toString());
  };
  await listJid('spam@a.localhost');

  let b = await startB();
  connectB(b);
  await b.user('bob');
  let bob = await connectTo(b, 'bob');
  t.teardown(() => bob.stop());
  await listsUntil(b, (api) => api.listed(parseJid('spam@a.localhost')));
  t.pass('b subscribed and fetched the list');

  /**
   * Once a has routed what `sender` sent, a message from alice over the same a -> b stream:
   * when bob has it, b has handled what came before it.
   */
  const afterwards = async (sender: FedClient, label: string) => {
    await sender.roundTrip();
    await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, `alice ${label}`)));
    await bob.next(isBody(`alice ${label}`));
  };
  const blocked = async (label: string) => {
    await spam.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, `spam ${label}`)));
    await spam.send(xml('presence', { to: 'bob@b.localhost', type: 'subscribe' }));
    await afterwards(spam, label);
    t.ok(
      await nothingArrived(bob, (el) => isBody(`spam ${label}`)(el) || isSubscribe('spam@a.localhost')(el)),
      `${label}: the listed JID's message and subscription request are dropped; others arrive`,
    );
  };
  await blocked('listed');
  await createInstant(bob, ROOM, 'Bob');
  const refused = await join(spam, ROOM, 'Spammer');
  t.equal(refused.self.attrs.type, 'error', 'the listed JID cannot join the room');
  t.equal(errorCondition(refused.self), 'forbidden', 'forbidden');
  const aliceIn = await join(alice, ROOM, 'Alice');
  t.not(aliceIn.self.attrs.type, 'error', 'a JID not listed joins');

  t.equal((await pubsub(xml('retract', { node: NODE, notify: 'true' }, xml('item', { id: hash('spam@a.localhost') })))).attrs.type, 'result');
  await listsUntil(b, (api) => !api.listed(parseJid('spam@a.localhost')));
  await spam.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'spam lifted')));
  await bob.next(isBody('spam lifted'));
  await spam.send(xml('presence', { to: 'bob@b.localhost', type: 'subscribe' }));
  await bob.next(isSubscribe('spam@a.localhost'));
  // Denied, so no request is pending when bob logs in again below.
  await bob.send(xml('presence', { to: 'spam@a.localhost', type: 'unsubscribed' }));
  await bob.roundTrip();
  const joined = await join(spam, ROOM, 'Spammer');
  t.not(joined.self.attrs.type, 'error', 'after the retraction the JID joins');
  t.pass('retracted: its message and subscription request arrive, and it joins');
  await spam.send(xml('presence', { to: `${ROOM}/Spammer`, type: 'unavailable' }));
  await spam.next((el) => isSelfPresence(ROOM)(el) && el.attrs.type === 'unavailable');

  // Listed again (by notification), then b stops; spam2 is listed while b is down.
  await listJid('spam@a.localhost');
  await listsUntil(b, (api) => api.listed(parseJid('spam@a.localhost')));
  await bob.stop();
  await b.stop();
  await listJid('spam2@a.localhost');
  b = await startB();
  t.ok(rtblOf(b).listed(parseJid('spam@a.localhost')), 'restarted, b applies the stored list before it can reach the service');
  t.notOk(rtblOf(b).listed(parseJid('spam2@a.localhost')), 'what was published meanwhile is not known yet');
  connectB(b);
  await listsUntil(b, (api) => api.listed(parseJid('spam2@a.localhost')));
  t.pass('once the service is reachable, b subscribes and fetches again');
  bob = await connectTo(b, 'bob');
  await blocked('after the restart');
  await spam2.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'spam2')));
  await afterwards(spam2, 'spam2');
  t.ok(await nothingArrived(bob, isBody('spam2')), 'the JID listed while b was down is blocked too');
}

t.test('a blocklist on a remote pubsub node blocks, lifts, and survives a restart', (t) => blocksLiftsSurvives(t, {}));

t.test('the same with the list stored on PostgreSQL', (t) => onPostgres(t, 'rtbl', (overrides) => blocksLiftsSurvives(t, overrides)));

t.test('after a lost link, the list is fetched again as soon as its server connects back', async (t) => {
  const a = await startFederated(t, 'a.localhost', {}, { modules_enabled: [...FEDERATION_MODULES, 'caps', 'pubsub'] });
  await a.user('mod');
  const mod = await connectTo(a, 'mod');
  t.teardown(() => mod.stop());
  const pubsub = (...children: Element[]) => iq(mod, 'set', xml('pubsub', { xmlns: PUBSUB }, ...children), SERVICE);
  await pubsub(xml('create', { node: NODE }), xml('configure', {}, dataForm(`${PUBSUB}#node_config`, { 'pubsub#max_items': 'max' })));
  const listJid = async (jid: string) => t.equal((await pubsub(xml('publish', { node: NODE }, reportItem(jid)))).attrs.type, 'result', `${jid} listed`);
  const listed = (jid: string) => (api: RtblApi) => api.listed(parseJid(jid));
  await listJid('x1@a.localhost');

  const b = await startFederated(
    t,
    'b.localhost',
    {},
    {
      modules_enabled: [...FEDERATION_MODULES, 'anti_spam'],
      modules: { anti_spam: { rtbl: [{ service: SERVICE, node: NODE }] } },
    },
  );
  // a reaches b through a proxy the test cuts; b reaches a (and its pubsub service) directly.
  const proxy = await cuttableProxy({ host: '127.0.0.1', port: b.s2sPort });
  t.teardown(() => proxy.close());
  link(a, b);
  a.server.s2s.addRoute(b.domain, `127.0.0.1:${proxy.port}`);
  b.server.s2s.addRoute(SERVICE, `127.0.0.1:${a.s2sPort}`);
  await listsUntil(b, (api) => api.fetches === 1 && listed('x1@a.localhost')(api));
  t.pass('b subscribed and fetched the list');

  proxy.cut();
  await listJid('x2@a.localhost');
  t.notOk(rtblOf(b).listed(parseJid('x2@a.localhost')), 'published while the link is down: b does not know');
  proxy.restore();
  // A domain this time: every address at it is listed.
  await listJid('evil.example');
  await listsUntil(b, (api) => api.fetches === 2 && listed('x2@a.localhost')(api) && listed('anyone@evil.example')(api));
  t.pass('a connected back to deliver the next entry: b fetched the list again and has x2 too');
  t.notOk(rtblOf(b).listed(parseJid('x4@a.localhost')), 'an address not listed is not');
});
