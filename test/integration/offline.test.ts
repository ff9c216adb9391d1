// XEP-0160 offline messages over real sockets: stored when the recipient has no available
// resource of non-negative priority, delivered with a XEP-0203 delay at its next such presence,
// and what is not stored (headline, standalone chat states, <no-store/>, a full queue).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { makeJid } from '../../src/jid.js';
import { DOMAIN, sessionsEnded, startTestServer, type TestServer } from '../helpers/harness.js';
import { connect, nothingArrived, xml, type TestClient } from '../helpers/clients.js';
import { rowsOwnedBy } from '../helpers/owned-rows.js';
import { storeOnBothDatabases } from '../helpers/databases.js';
import type { Storage } from '../../src/storage/database.js';
import { AccountStore } from '../../src/storage/accounts.js';
import { ArchiveStore } from '../../src/storage/archive/store.js';

const MODULES = ['sasl', 'ping', 'disco', 'offline'];
const CHATSTATES = 'http://jabber.org/protocol/chatstates';
const HINTS = 'urn:xmpp:hints';
const DELAY = 'urn:xmpp:delay';

const isMessage = (el: Element) => el.name === 'message';
const withBody = (el: Element) => isMessage(el) && el.getChild('body') !== undefined && el.attrs.type !== 'error';
const errorFor = (id: string) => (el: Element) => isMessage(el) && el.attrs.type === 'error' && el.attrs.id === id;
const errorCondition = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;
const errorText = (el: Element) => el.getChild('error')?.getChildText('text');
const chat = (to: string, id: string, text: string, ...extra: Element[]) => xml('message', { to, type: 'chat', id }, xml('body', {}, text), ...extra);

async function offlineRows(ts: TestServer, user: string): Promise<number> {
  return new ArchiveStore(ts.server.core.storage, 'offline').count(DOMAIN, user);
}

/** Polls until the user's queue holds `n` rows. */
async function waitForRows(ts: TestServer, user: string, n: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await offlineRows(ts, user);
    if (rows === n) return;
    if (Date.now() > deadline) throw new Error(`${user} has ${rows} offline rows, expected ${n}`);
    await sleep(25);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops a client and waits until the server has ended its session. The server keeps a
 * session registered (available, closed === false) until the socket closes, after the closing
 * handshake: a message routed to it in that window is silently dropped (see the report on
 * XmlStream.send after closingSent), so tests that message a user right after it logged out wait.
 */
async function logout(ts: TestServer, client: TestClient, user: string): Promise<void> {
  await client.stop();
  await sessionsEnded(ts, user);
}

t.test('offline messages', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'hank']) await ts.addUser(u);
  const clients: TestClient[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.stop())));
  const alice = await connect(ts, 'alice', { resource: 'a' });
  clients.push(alice);

  t.test('stored, then delivered in order with a delay at initial presence', async (t) => {
    const before = Date.now();
    for (const n of [1, 2, 3]) await alice.send(chat('bob@localhost', `b${n}`, `hello ${n}`));
    await waitForRows(ts, 'bob', 3);
    const after = Date.now();
    t.ok(await nothingArrived(alice, isMessage), 'the sender gets no error');

    const bob = await connect(ts, 'bob', { resource: 'phone' });
    clients.push(bob);
    for (const n of [1, 2, 3]) {
      const got = await bob.next(withBody);
      t.equal(got.getChildText('body'), `hello ${n}`, `message ${n} arrives in order`);
      t.equal(got.attrs.from, alice.jid, 'from is the sender');
      t.equal(got.attrs.id, `b${n}`, 'the stanza is the one sent');
      const delays = got.getChildren('delay', DELAY);
      t.equal(delays.length, 1, 'one delay');
      t.equal(delays[0]!.attrs.from, DOMAIN, 'the delay comes from the server');
      const stamp = delays[0]!.attrs.stamp as string;
      t.match(stamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'UTC XEP-0082 DateTime');
      const ms = Date.parse(stamp);
      t.ok(ms >= before && ms <= after, 'stamped with the time it was stored');
    }
    t.ok(await nothingArrived(bob, withBody), 'nothing more');
    await waitForRows(ts, 'bob', 0);
    await logout(ts, bob, 'bob');
  });

  t.test('a message to the full JID of a resource that is gone is stored too', async (t) => {
    await alice.send(chat('bob@localhost/phone', 'full-1', 'to the old resource'));
    await waitForRows(ts, 'bob', 1);
    const bob = await connect(ts, 'bob', { resource: 'laptop' });
    clients.push(bob);
    const got = await bob.next(withBody);
    t.equal(got.getChildText('body'), 'to the old resource');
    t.ok(got.getChild('delay', DELAY));
    await bob.stop();
    await waitForRows(ts, 'bob', 0);
  });

  t.test('headline: not stored, no error', async (t) => {
    await alice.send(xml('message', { to: 'carol@localhost', type: 'headline', id: 'h1' }, xml('body', {}, 'news')));
    t.ok(await nothingArrived(alice, errorFor('h1')), 'no error back');
    t.equal(await offlineRows(ts, 'carol'), 0, 'nothing stored');
  });

  t.test('standalone chat states: not stored, no error; with a body they are', async (t) => {
    await alice.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'cs1' }, xml('composing', { xmlns: CHATSTATES })));
    await alice.send(
      xml('message', { to: 'carol@localhost', type: 'chat', id: 'cs2' }, xml('paused', { xmlns: CHATSTATES }), xml('thread', {}, 'th'), xml('no-store', { xmlns: HINTS })),
    );
    t.ok(await nothingArrived(alice, isMessage), 'no error back, even with <no-store/>');
    t.equal(await offlineRows(ts, 'carol'), 0, 'nothing stored');

    await alice.send(chat('carol@localhost', 'cs3', 'typed', xml('active', { xmlns: CHATSTATES })));
    await alice.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'cs4' }, xml('gone', { xmlns: CHATSTATES }), xml('store', { xmlns: HINTS })));
    await waitForRows(ts, 'carol', 2);
    t.pass('a message with a body and a chat state is stored; so is a chat state hinted <store/>');
  });

  t.test('<no-store/>: not stored, the sender gets service-unavailable', async (t) => {
    await alice.send(chat('dave@localhost', 'ns1', 'secret', xml('no-store', { xmlns: HINTS })));
    const error = await alice.next(errorFor('ns1'));
    t.equal(errorCondition(error), 'service-unavailable');
    t.equal(error.attrs.from, 'dave@localhost');
    t.equal(await offlineRows(ts, 'dave'), 0);

    await alice.send(chat('dave@localhost', 'ns2', 'temporary is fine', xml('no-permanent-store', { xmlns: HINTS })));
    await waitForRows(ts, 'dave', 1);
    t.pass('<no-permanent-store/> allows offline (temporary) storage');
  });

  t.test('negative priority: no delivery; raising it to 0 or more delivers', async (t) => {
    await alice.send(chat('erin@localhost', 'np1', 'wait for it'));
    await waitForRows(ts, 'erin', 1);
    const erin = await connect(ts, 'erin', { resource: 'bot', presence: false });
    clients.push(erin);
    await erin.send(xml('presence', {}, xml('priority', {}, '-1')));
    t.ok(await nothingArrived(erin, withBody), 'nothing delivered at negative initial presence');
    t.equal(await offlineRows(ts, 'erin'), 1, 'still stored');

    await alice.send(chat('erin@localhost', 'np2', 'second'));
    await waitForRows(ts, 'erin', 2);
    t.pass('a bare message for an account with only a negative-priority resource is stored');

    await erin.send(xml('presence', {}, xml('priority', {}, '0')));
    t.equal((await erin.next(withBody)).getChildText('body'), 'wait for it');
    t.equal((await erin.next(withBody)).getChildText('body'), 'second');
    await waitForRows(ts, 'erin', 0);
    await erin.stop();
  });

  t.test('no presence at all: no delivery', async (t) => {
    await alice.send(chat('frank@localhost', 'nopr', 'are you there'));
    await waitForRows(ts, 'frank', 1);
    const frank = await connect(ts, 'frank', { presence: false });
    clients.push(frank);
    t.ok(await nothingArrived(frank, withBody), 'nothing delivered without presence');
    t.equal(await offlineRows(ts, 'frank'), 1);
    await frank.stop();
  });

  t.test('a delay that claims to be from the server is replaced by ours', async (t) => {
    await alice.send(chat('hank@localhost', 'fd1', 'forged', xml('delay', { xmlns: DELAY, from: DOMAIN, stamp: '2001-01-01T00:00:00Z' })));
    await waitForRows(ts, 'hank', 1);
    const hank = await connect(ts, 'hank');
    clients.push(hank);
    const got = await hank.next(withBody);
    const delays = got.getChildren('delay', DELAY);
    t.equal(delays.length, 1);
    t.not(delays[0]!.attrs.stamp, '2001-01-01T00:00:00Z');
    await hank.stop();
  });

  t.test('deleting the account removes its offline messages', async (t) => {
    await alice.send(chat('gina@localhost', 'del1', 'one'));
    await alice.send(chat('gina@localhost', 'del2', 'two'));
    await waitForRows(ts, 'gina', 2);
    await ts.server.core.accounts.delete(makeJid('gina', DOMAIN));
    const owned = await rowsOwnedBy(ts.server.core.storage, DOMAIN, 'gina');
    for (const [table, n] of Object.entries(owned)) t.equal(n, 0, `${table} has no rows of gina`);
  });

  t.test('disco#info advertises msgoffline', async (t) => {
    await alice.send(xml('iq', { to: DOMAIN, type: 'get', id: 'disco1' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const info = await alice.next((el) => el.attrs.id === 'disco1');
    const features = info
      .getChild('query')!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    t.ok(features.includes('msgoffline'));
  });
});

t.test('a full queue: the sender gets service-unavailable and nothing is stored', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { offline: { max_messages: 2 } } });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const alice = await connect(ts, 'alice');
  t.teardown(() => alice.stop());
  await alice.send(chat('bob@localhost', 'q1', 'one'));
  await alice.send(chat('bob@localhost', 'q2', 'two'));
  await waitForRows(ts, 'bob', 2);
  await alice.send(chat('bob@localhost', 'q3', 'three'));
  const error = await alice.next(errorFor('q3'));
  t.equal(errorCondition(error), 'service-unavailable');
  t.equal(error.getChild('error')?.attrs.type, 'cancel');
  t.match(errorText(error), /full/);
  t.equal(await offlineRows(ts, 'bob'), 2, 'the third is not stored');
  t.ok(await nothingArrived(alice, errorFor('q1')), 'the stored ones got no error');

  const bob = await connect(ts, 'bob');
  t.teardown(() => bob.stop());
  t.equal((await bob.next(withBody)).getChildText('body'), 'one');
  t.equal((await bob.next(withBody)).getChildText('body'), 'two');
  t.ok(await nothingArrived(bob, withBody), 'nothing more');
  await waitForRows(ts, 'bob', 0);
  await alice.send(chat('bob@localhost', 'q4', 'room again'));
  t.equal((await bob.next(withBody)).getChildText('body'), 'room again', 'bob is online now: delivered live');
});

t.test('offline messages survive a restart', async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'starling-offline-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));

  const first = await startTestServer(t, { data_dir: dataDir, modules_enabled: MODULES });
  await first.addUser('alice');
  await first.addUser('bob');
  const alice = await connect(first, 'alice');
  const storedFrom = Date.now();
  await alice.send(chat('bob@localhost', 'r1', 'before the restart 1'));
  await alice.send(chat('bob@localhost', 'r2', 'before the restart 2'));
  await waitForRows(first, 'bob', 2);
  const storedUntil = Date.now();
  await alice.stop();
  await first.stop();

  const second = await startTestServer(t, { data_dir: dataDir, modules_enabled: MODULES });
  t.equal(await offlineRows(second, 'bob'), 2, 'the rows are in the database the new server opened');
  const bob = await connect(second, 'bob');
  t.teardown(() => bob.stop());
  for (const n of [1, 2]) {
    const got = await bob.next(withBody);
    t.equal(got.getChildText('body'), `before the restart ${n}`);
    const delay = got.getChild('delay', DELAY);
    t.ok(delay, 'with a delay');
    const ms = Date.parse(delay!.attrs.stamp as string);
    t.ok(ms >= storedFrom && ms <= storedUntil, 'stamped with the time it was stored, before the restart');
  }
  await waitForRows(second, 'bob', 0);
});

/** The queue (an archive) on SQLite and (when reachable) PostgreSQL: order, limit, concurrency, cascade. */
async function storeContract(t: Test, storage: Storage) {
  const archive = new ArchiveStore(storage, 'offline');
  const store = {
    push: async (host: string, user: string, stanza: string, limit: number) =>
      (await archive.appendWithin(host, user, { withBare: 'x@y.example', withResource: '', direction: 'in', stanza }, limit)) === 'full' ? 'full' : 'stored',
    drain: archive.consume.bind(archive),
    count: archive.count.bind(archive),
  };
  const accounts = new AccountStore(storage.db);
  for (const u of ['ann', 'ben', 'cat', 'dan']) await accounts.create('x.example', u, []);

  t.test('pushed in order, drained oldest first with their times', async (t) => {
    for (const n of [1, 2, 3]) t.equal(await store.push('x.example', 'ann', `<message id='${n}'/>`, 10), 'stored');
    t.equal(await store.count('x.example', 'ann'), 3);
    let seen: string[] = [];
    let times: number[] = [];
    t.equal(
      await store.drain('x.example', 'ann', (messages) => {
        seen = messages.map((m) => m.stanza);
        times = messages.map((m) => m.ts);
        return messages.length;
      }),
      3,
    );
    t.same(seen, ["<message id='1'/>", "<message id='2'/>", "<message id='3'/>"]);
    t.ok(times[0]! <= times[1]! && times[1]! <= times[2]!, 'times as stored');
    t.equal(await store.count('x.example', 'ann'), 0, 'deleted once handed over');
    t.equal(await store.drain('x.example', 'ann', () => (t.fail('not called on an empty queue'), 0)), 0);
  });

  t.test('a partial hand-over deletes only what was handed', async (t) => {
    for (const n of [1, 2, 3]) await store.push('x.example', 'ben', `<message id='${n}'/>`, 10);
    t.equal(await store.drain('x.example', 'ben', () => 2), 2);
    const rest: string[] = [];
    await store.drain('x.example', 'ben', (messages) => (rest.push(...messages.map((m) => m.stanza)), messages.length));
    t.same(rest, ["<message id='3'/>"]);
    t.equal(await store.push('x.example', 'ben', `<message id='4'/>`, 10), 'stored', 'an emptied queue takes new messages');
  });

  t.test('the limit holds under concurrent pushes', async (t) => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.push('x.example', 'cat', `<message id='${i}'/>`, 10)));
    t.equal(results.filter((r) => r === 'stored').length, 10);
    t.equal(results.filter((r) => r === 'full').length, 10);
    t.equal(await store.count('x.example', 'cat'), 10);
  });

  t.test('concurrent drains hand each message over once', async (t) => {
    const handed: string[] = [];
    const take = (messages: { stanza: string }[]) => (handed.push(...messages.map((m) => m.stanza)), messages.length);
    await Promise.all([store.drain('x.example', 'cat', take), store.drain('x.example', 'cat', take), store.drain('x.example', 'cat', take)]);
    t.equal(handed.length, 10);
    t.equal(new Set(handed).size, 10, 'no duplicates');
  });

  t.test('no account, no row; deleting the account deletes its queue', async (t) => {
    await t.rejects(store.push('x.example', 'nobody', '<message/>', 10), 'the foreign key refuses it');
    await store.push('x.example', 'dan', '<message/>', 10);
    await accounts.delete('x.example', 'dan');
    t.equal(await store.count('x.example', 'dan'), 0);
  });
}

t.test('offline store contract', async (t) => storeOnBothDatabases(t, 'offline', storeContract));
