// XEP-0357 push notifications over real sockets. The App Server's XMPP Push Service is a test
// service domain (push.localhost) registered on the server's router: it records each publish
// and answers it as the case needs (result, an error, or nothing).
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { makeJid } from '../../src/jid.js';
import type { Storage } from '../../src/storage/database.js';
import { AccountStore } from '../../src/storage/accounts.js';
import { PushStore } from '../../modules/push/store.js';
import { MapStore } from '../../src/storage/stores.js';
import { ArchiveStore } from '../../src/storage/archive/store.js';
import { DOMAIN, nextHook, sessionsEnded, startTestServer, type TestServer } from '../helpers/harness.js';
import { connect, rawAuthenticated, rawLogin, rawRoundTrip, xml, type RawStream, type TestClient } from '../helpers/clients.js';
import { rowsOwnedBy } from '../helpers/owned-rows.js';
import { storeOnBothDatabases } from '../helpers/databases.js';

const PUSH = 'urn:xmpp:push:0';
const PUBSUB = 'http://jabber.org/protocol/pubsub';
const DATA = 'jabber:x:data';
const SM = 'urn:xmpp:sm:3';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const CHATSTATES = 'http://jabber.org/protocol/chatstates';
const HINTS = 'urn:xmpp:hints';
const APP = 'push.localhost';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm', 'push'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Answer = 'result' | { type: string; condition: string } | 'silent';

/** The App Server's push service, served on a domain of the test server's router. */
class AppServer {
  readonly received: Element[] = [];
  answer: Answer = 'result';
  private waiters: (() => void)[] = [];
  /** The routing of the last reply: the publisher has it once this settles. */
  private replied: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ts: TestServer,
    test: { teardown(fn: () => unknown): void },
  ) {
    const router = ts.server.core.router;
    const undo = router.addDomain(APP, (stanza, from, to) => {
      if (stanza.name !== 'iq' || stanza.attrs.type !== 'set') return;
      this.received.push(stanza);
      for (const w of this.waiters.splice(0)) w();
      const answer = this.answer;
      if (answer === 'silent') return;
      const attrs = { id: stanza.attrs.id!, from: to.toString(), to: from.toString() };
      const reply =
        answer === 'result'
          ? xml('iq', { ...attrs, type: 'result' })
          : xml('iq', { ...attrs, type: 'error' }, xml('error', { type: answer.type }, xml(answer.condition, { xmlns: STANZAS })));
      this.replied = router.route(reply);
    });
    test.teardown(undo);
  }

  /** The next publish (oldest first). */
  async next(timeoutMs = 5000): Promise<Element> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      if (Date.now() > deadline) throw new Error('no push notification arrived');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.received.shift()!;
  }

  /**
   * Resolves once the last reply reached the publisher and what it decides without waiting
   * (a transient failure counted, a registration's removal begun) is done.
   */
  async answered(): Promise<void> {
    await this.replied.catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
  }

  /**
   * True when no publish has arrived, checked with no clock: after a round trip of each of
   * `senders` (their messages are handled: the push module's hooks ran and began whatever
   * storage read a notification waits on), then a query of its own on the same database (the
   * test server's SQLite has one connection, which runs queries in order: the module's reads
   * are done), then a turn of the event loop (what follows those reads, the publish and its
   * routing to the App Server here, needs no I/O).
   */
  async none(...senders: TestClient[]): Promise<boolean> {
    for (const sender of senders) await sender.roundTrip();
    await this.ts.server.core.storage.ping();
    await new Promise((resolve) => setImmediate(resolve));
    const quiet = this.received.length === 0;
    this.received.length = 0;
    return quiet;
  }
}

/** The summary form's fields of a publish, and the parts around it. */
function parsePublish(iq: Element) {
  const pubsub = iq.getChild('pubsub', PUBSUB);
  const publish = pubsub?.getChild('publish');
  const form = publish?.getChild('item')?.getChild('notification', PUSH)?.getChild('x', DATA);
  const fields: Record<string, string> = {};
  for (const f of form?.getChildren('field') ?? []) fields[f.attrs.var as string] = f.getChildText('value') ?? '';
  return { node: publish?.attrs.node as string | undefined, formType: form?.attrs.type, fields, options: pubsub?.getChild('publish-options')?.getChild('x', DATA) };
}

const optionsForm = (secret: string) =>
  xml(
    'x',
    { xmlns: DATA },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#publish-options')),
    xml('field', { var: 'secret' }, xml('value', {}, secret)),
  );
const enable = (node: string, ...form: Element[]) => xml('enable', { xmlns: PUSH, jid: APP, node }, ...form);
const chat = (to: string, text: string, ...extra: Element[]) => xml('message', { to, type: 'chat' }, xml('body', {}, text), ...extra);
const errorCondition = (el: Element) => el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;

let iqs = 0;
/** Sends an IQ set from a client and resolves with the reply. */
async function iqSet(client: TestClient, payload: Element, to?: string): Promise<Element> {
  const id = `q${++iqs}`;
  await client.send(xml('iq', { type: 'set', id, ...(to ? { to } : {}) }, payload));
  return client.next((el) => el.name === 'iq' && el.attrs.id === id);
}

async function rawIq(s: RawStream, payload: Element): Promise<Element> {
  const id = `r${++iqs}`;
  s.write(xml('iq', { type: 'set', id }, payload).toString());
  return s.until(() => {
    const i = s.elements.findIndex((e) => e.name === 'iq' && e.attrs.id === id);
    return i === -1 ? undefined : s.elements.splice(i, 1)[0];
  });
}

async function registrations(ts: TestServer, user: string): Promise<number> {
  return (await new MapStore(ts.server.core.storage, 'push').all(DOMAIN, user)).size;
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Stops a client and waits until the server has no session of the user left. */
async function logout(ts: TestServer, client: TestClient, user: string): Promise<void> {
  const ended = sessionsEnded(ts, user);
  await client.stop();
  await ended;
}

/** A client enables push (node = user name) and logs out: an offline account with a registration. */
async function registeredOffline(ts: TestServer, user: string, node = user, ...form: Element[]): Promise<void> {
  const c = await connect(ts, user, { resource: 'phone' });
  const reply = await iqSet(c, enable(node, ...form));
  if (reply.attrs.type !== 'result') throw new Error(`enable failed: ${reply.toString()}`);
  await logout(ts, c, user);
}

t.test('push notifications', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    modules: { sm: { resume_timeout: 30, request_ack_every: 100 }, push: { max_failures: 2, reply_timeout: 1, max_registrations: 3 } },
  });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'hank', 'ivan', 'judy']) await ts.addUser(u);
  const app = new AppServer(ts, t);
  const bob = await connect(ts, 'bob', { resource: 'desk' });
  t.teardown(() => bob.stop());

  t.test('enable and disable: own account only, well-formed, advertised', async (t) => {
    const c = await connect(ts, 'judy', { resource: 'r' });
    t.teardown(() => c.stop());
    await c.send(xml('iq', { type: 'get', id: 'info1', to: 'judy@localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const infoReply = await c.next((el) => el.attrs.id === 'info1');
    t.ok(
      infoReply
        .getChild('query')
        ?.getChildren('feature')
        .some((f) => f.attrs.var === PUSH),
      'the account advertises urn:xmpp:push:0',
    );
    t.equal((await iqSet(c, enable('x'), 'judy@localhost')).attrs.type, 'result', 'to the own bare JID');
    const other = await iqSet(c, enable('x'), 'bob@localhost');
    t.equal(errorCondition(other), 'forbidden', "not to another account's");
    t.equal(errorCondition(await iqSet(c, xml('enable', { xmlns: PUSH, node: 'x' }))), 'bad-request', 'jid is required');
    t.equal(errorCondition(await iqSet(c, xml('enable', { xmlns: PUSH, jid: '@bad', node: 'x' }))), 'jid-malformed', 'jid must be a JID');
    const wrongForm = xml('x', { xmlns: DATA }, xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'urn:example')));
    t.equal(errorCondition(await iqSet(c, enable('y', wrongForm))), 'bad-request', 'only publish-options forms');
    t.equal(await registrations(ts, 'judy'), 1);
    t.equal((await iqSet(c, enable('x', optionsForm('s2')))).attrs.type, 'result', 'enabling again replaces the options');
    t.equal(await registrations(ts, 'judy'), 1, 'one registration per service and node');
    await iqSet(c, enable('y'));
    await iqSet(c, enable('z'));
    t.equal(errorCondition(await iqSet(c, enable('w'))), 'not-allowed', 'max_registrations holds');
    t.equal((await iqSet(c, xml('disable', { xmlns: PUSH, jid: APP }))).attrs.type, 'result');
    t.equal(await registrations(ts, 'judy'), 0, 'disable without node removes every node of the service');
  });

  t.test('(1) a hibernated session: notification with the count, without body or sender', async (t) => {
    const { s } = await rawLogin(ts.port, 'alice', 'phone');
    s.write('<presence/>');
    s.write(`<enable xmlns='${SM}' resume='true'/>`);
    const enabled = await s.element('enabled');
    const reply = await rawIq(s, enable('alice-phone', optionsForm('hunter2')));
    t.equal(reply.attrs.type, 'result', 'push enabled');
    await rawRoundTrip(s);
    s.elements.length = 0;
    const hibernated = nextHook(ts, 'session/interrupted');
    s.close(); // cut: no closing handshake
    const alice = makeJid('alice', DOMAIN);
    await hibernated; // the server saw it and keeps the session

    await bob.send(chat('alice@localhost', 'meet me at the secret place'));
    const iq = await app.next();
    t.equal(iq.attrs.from, 'alice@localhost', "published from the user's bare JID (XEP-0357 §7)");
    t.equal(iq.attrs.to, APP);
    const p = parsePublish(iq);
    t.equal(p.node, 'alice-phone');
    t.equal(p.formType, 'submit');
    t.equal(p.fields.FORM_TYPE, 'urn:xmpp:push:summary');
    t.equal(p.fields['message-count'], '1');
    t.notOk('last-message-body' in p.fields, 'no body by default');
    t.notOk('last-message-sender' in p.fields, 'no sender by default');
    t.notOk(iq.toString().includes('secret place'), 'the body appears nowhere');
    t.notOk(iq.toString().includes('bob@'), 'the sender appears nowhere');
    t.equal(
      p.options
        ?.getChildren('field')
        .find((f) => f.attrs.var === 'secret')
        ?.getChildText('value'),
      'hunter2',
      'the publish options go along',
    );

    await bob.send(chat('alice@localhost', 'second'));
    t.equal(parsePublish(await app.next()).fields['message-count'], '2', 'the count goes up');
    await bob.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('composing', { xmlns: CHATSTATES })));
    await bob.send(xml('message', { to: 'alice@localhost', type: 'headline' }, xml('body', {}, 'news')));
    t.ok(await app.none(bob), 'chat states and headlines wake nobody');
    await bob.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('encrypted', { xmlns: 'eu.siacs.conversations.axolotl' })));
    t.equal(parsePublish(await app.next()).fields['message-count'], '3', 'an encrypted message without a body does');

    // The messages are still kept for the session: resuming delivers them.
    const r = await rawAuthenticated(ts.port, 'alice');
    r.write(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='0'/>`);
    await r.element('resumed');
    const bodies = () => r.elements.filter((e) => e.name === 'message' && e.attrs.type === 'chat' && e.getChild('body')).map((e) => e.getChildText('body'));
    await r.until(() => bodies().length >= 2);
    t.same(bodies(), ['meet me at the secret place', 'second'], 'stream management still queued them');

    // A message while the connection is up notifies nobody; after the next cut the count starts again.
    await bob.send(chat('alice@localhost', 'live'));
    await r.until(() => bodies().includes('live'));
    t.ok(await app.none(bob), 'no notification for a live session');
    // A round trip that adds no stanza to count: the server's <a/> to an <r/>.
    r.write(`<r xmlns='${SM}'/>`);
    await r.element('a');
    // Acknowledge everything (resumed with h=0, so all of it came again on this stream).
    const stanzas = r.elements.filter((e) => e.name === 'message' || e.name === 'iq' || e.name === 'presence').length;
    r.write(`<a xmlns='${SM}' h='${stanzas}'/>`);
    r.write(`<r xmlns='${SM}'/>`);
    await r.element('a'); // the server handled the <a/> before it
    const hibernatedAgain = nextHook(ts, 'session/interrupted');
    r.close();
    await hibernatedAgain;
    await bob.send(chat('alice@localhost', 'after the second cut'));
    t.equal(parsePublish(await app.next()).fields['message-count'], '1', 'counted from one again');
    // End the kept session for good (its queue goes to offline storage, already notified).
    const kept = sessionsEnded(ts, 'alice'); // its teardown (the queue re-routed) is done then
    ts.server.core.sessions.resourcesOf(alice).forEach((x) => x.end());
    await kept;
    t.ok(await app.none(), 'a message re-routed to offline storage is not notified twice');
  });

  t.test('(3) an offline account: notified once the message is stored', async (t) => {
    await registeredOffline(ts, 'carol');
    // Slow storage: a hook between push's and offline storage's holds each message 300 ms.
    const undo = ts.server.core.hosts.get(DOMAIN)!.hooks.on('message/offline', () => sleep(300).then(() => false), 5, 'test');
    await bob.send(chat('carol@localhost', 'are you there?'));
    const iq = await app.next();
    undo();
    t.equal(await new ArchiveStore(ts.server.core.storage, 'offline').count(DOMAIN, 'carol'), 1, 'the message is in offline storage when the notification goes out');
    const p = parsePublish(iq);
    t.equal(p.node, 'carol');
    t.equal(p.fields['message-count'], '1');
    t.notOk('last-message-body' in p.fields);
    t.equal(p.options, undefined, 'no publish options when none were given');
    await bob.send(chat('carol@localhost', 'hello?'));
    t.equal(parsePublish(await app.next()).fields['message-count'], '2');
    await bob.send(chat('carol@localhost', 'not kept', xml('no-store', { xmlns: HINTS })));
    t.ok(await app.none(bob), 'a <no-store/> message is not stored, so it wakes nobody');

    const c = await connect(ts, 'carol', { resource: 'phone' });
    const got = await c.next((el) => el.name === 'message' && el.getChildText('body') === 'are you there?');
    t.ok(got, 'the client that connects gets the stored message');
    await logout(ts, c, 'carol');
    await bob.send(chat('carol@localhost', 'again'));
    t.equal(parsePublish(await app.next()).fields['message-count'], '1', 'a login resets the count');
  });

  t.test('(4) disable stops notifications, one node or all of them', async (t) => {
    const c = await connect(ts, 'dave', { resource: 'phone' });
    await iqSet(c, enable('d1'));
    await iqSet(c, enable('d2'));
    t.equal((await iqSet(c, xml('disable', { xmlns: PUSH, jid: APP, node: 'd1' }))).attrs.type, 'result');
    await logout(ts, c, 'dave');
    await bob.send(chat('dave@localhost', 'one'));
    t.equal(parsePublish(await app.next()).node, 'd2', 'the remaining node is notified');
    t.ok(await app.none(bob), 'the disabled one is not');

    const c2 = await connect(ts, 'dave', { resource: 'phone' });
    await iqSet(c2, xml('disable', { xmlns: PUSH, jid: APP }));
    await logout(ts, c2, 'dave');
    await bob.send(chat('dave@localhost', 'two'));
    t.ok(await app.none(bob), 'nothing once the service is disabled');
    t.equal(await registrations(ts, 'dave'), 0);
  });

  t.test('(5) App Server errors: cancel disables at once; wait after max_failures in a row', async (t) => {
    await registeredOffline(ts, 'frank');
    app.answer = { type: 'cancel', condition: 'item-not-found' };
    await bob.send(chat('frank@localhost', 'one'));
    await app.next();
    await app.answered();
    t.equal(await registrations(ts, 'frank'), 0, 'an error of type cancel disabled the registration');
    await bob.send(chat('frank@localhost', 'two'));
    t.ok(await app.none(bob), 'and no more notifications go there');

    await registeredOffline(ts, 'gina');
    app.answer = { type: 'wait', condition: 'resource-constraint' };
    await bob.send(chat('gina@localhost', 'one'));
    await app.next();
    await app.answered();
    t.equal(await registrations(ts, 'gina'), 1, 'one transient error is tolerated');
    app.answer = 'result';
    await bob.send(chat('gina@localhost', 'two'));
    await app.next();
    app.answer = { type: 'wait', condition: 'resource-constraint' };
    await bob.send(chat('gina@localhost', 'three'));
    await app.next();
    await app.answered();
    t.equal(await registrations(ts, 'gina'), 1, 'a success in between resets the failures');
    app.answer = 'silent';
    await bob.send(chat('gina@localhost', 'four'));
    await app.next();
    await waitFor(async () => (await registrations(ts, 'gina')) === 0, 'the registration to be disabled', 15_000);
    t.pass('no reply within reply_timeout is the second failure in a row: disabled');
    app.answer = 'result';
  });

  t.test('an unreachable push service is disabled after max_failures (the router bounces the publish)', async (t) => {
    const c = await connect(ts, 'ivan', { resource: 'phone' });
    await iqSet(c, xml('enable', { xmlns: PUSH, jid: 'push.unreachable.example', node: 'n' }));
    await logout(ts, c, 'ivan');
    // The router's error for the publish, to the account that published: once it is handled,
    // the publisher has it and counted the failure.
    const bounced = nextHook(ts, 'iq/bare', ({ stanza, to }) => stanza.attrs.type === 'error' && to.local === 'ivan');
    await bob.send(chat('ivan@localhost', 'one'));
    await bounced;
    t.equal(await registrations(ts, 'ivan'), 1, 'remote-server-not-found counts as a transient failure');
    const bouncedAgain = nextHook(ts, 'iq/bare', ({ stanza, to }) => stanza.attrs.type === 'error' && to.local === 'ivan');
    await bob.send(chat('ivan@localhost', 'two'));
    await bouncedAgain;
    t.equal(await registrations(ts, 'ivan'), 0, 'disabled after two in a row');
  });

  t.test('the push service removing the affiliation disables the registration (§8)', async (t) => {
    await registeredOffline(ts, 'hank', 'h1');
    await ts.server.core.router.route(
      xml('message', { from: APP, to: 'hank@localhost' }, xml('pubsub', { xmlns: PUBSUB, node: 'h1' }, xml('affiliation', { jid: 'hank@localhost', affiliation: 'none' }))),
    );
    t.equal(await registrations(ts, 'hank'), 0);
  });

  t.test('(6) deleting the account deletes its registrations', async (t) => {
    await registeredOffline(ts, 'erin');
    t.equal(await registrations(ts, 'erin'), 1);
    await ts.server.core.accounts.delete(makeJid('erin', DOMAIN));
    const owned = await rowsOwnedBy(ts.server.core.storage, DOMAIN, 'erin');
    for (const [table, n] of Object.entries(owned)) t.equal(n, 0, `${table} has no rows of erin`);
  });
});

t.test('(2) include_body and include_sender; min_interval', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    modules: { push: { include_body: true, include_sender: true, min_interval: 60 } },
  });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const app = new AppServer(ts, t);
  await registeredOffline(ts, 'alice');
  const bob = await connect(ts, 'bob', { resource: 'desk' });
  t.teardown(() => bob.stop());
  await bob.send(chat('alice@localhost', 'Wherefore art thou?'));
  const p = parsePublish(await app.next());
  t.equal(p.fields['last-message-body'], 'Wherefore art thou?');
  t.equal(p.fields['last-message-sender'], bob.jid, "the sender's full JID");
  t.equal(p.fields['message-count'], '1');
  await bob.send(chat('alice@localhost', 'too soon'));
  t.ok(await app.none(bob), 'no second notification within min_interval');
});

/** The store on SQLite and (when reachable) PostgreSQL. */
async function storeContract(t: Test, storage: Storage) {
  const store = new PushStore(new MapStore(storage, 'push'));
  const accounts = new AccountStore(storage.db);
  for (const u of ['ann', 'ben']) await accounts.create('x.example', u, []);
  const reg = (service: string, node: string, form?: string) => ({ service, node, form });

  t.equal(await store.enable('x.example', 'ann', reg('p.example', 'n1'), 2), 'enabled');
  t.equal(await store.enable('x.example', 'ann', reg('p.example', 'n1', '<x/>'), 2), 'updated');
  t.equal(await store.enable('x.example', 'ann', reg('p.example', ''), 2), 'enabled', 'no node is a node of its own');
  t.equal(await store.enable('x.example', 'ann', reg('q.example', 'n1'), 2), 'full');
  t.same(await store.get('x.example', 'ann', 'p.example', 'n1'), reg('p.example', 'n1', '<x/>'));
  t.same((await store.list('x.example', 'ann')).map((r) => r.node).sort(), ['', 'n1']);
  t.equal(await store.disable('x.example', 'ann', 'p.example', 'n1'), 1);
  t.equal(await store.disable('x.example', 'ann', 'p.example'), 1);
  t.same(await store.list('x.example', 'ann'), []);
  await t.rejects(store.enable('x.example', 'nobody', reg('p.example', 'n'), 2), 'the foreign key refuses a missing account');
  const results = await Promise.all([1, 2, 3, 4].map((n) => store.enable('x.example', 'ben', reg('p.example', `c${n}`), 2)));
  t.equal(results.filter((r) => r === 'enabled').length, 2, 'the limit holds under concurrent enables');
  await accounts.delete('x.example', 'ben');
  t.same(await store.list('x.example', 'ben'), [], 'deleting the account deletes its registrations');
}

t.test('push store contract', async (t) => storeOnBothDatabases(t, 'push', storeContract));
