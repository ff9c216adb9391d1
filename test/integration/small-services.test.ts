// Small services over real sockets: software version (XEP-0092), entity time (XEP-0202), last
// activity (XEP-0012), vcard-temp (XEP-0054) and private XML storage (XEP-0049).
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { parseJid } from '../../src/jid.js';
import { VERSION } from '../../src/version.js';
import { connect, xml, type TestClient } from '../helpers/clients.js';
import { DOMAIN, sessionsEnded, startTestServer } from '../helpers/harness.js';
import { rowsOwnedBy } from '../helpers/owned-rows.js';
import { subscribe } from '../helpers/fake-roster.js';

const errorCondition = (el: Element) =>
  el.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas')?.name;

const MODULES = ['sasl', 'ping', 'disco', 'test-roster', 'version', 'time', 'last', 'vcard', 'private'];

async function iq(client: TestClient, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = `q${Math.random().toString(36).slice(2)}`;
  await client.send(xml('iq', to === undefined ? { type, id } : { type, id, to }, payload));
  return client.next((el) => el.name === 'iq' && el.attrs.id === id);
}

const until = async <T>(check: () => Promise<T | undefined>, ms = 3000): Promise<T> => {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
};

t.test('small services', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    modules: { vcard: { max_size: 2048 }, private: { max_size: 4096 } },
  });
  for (const u of ['alice', 'bob', 'carol', 'dave']) await ts.addUser(u);
  const clients: TestClient[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.stop())));
  const bob = await connect(ts, 'bob', { resource: 'b' });
  const carol = await connect(ts, 'carol', { resource: 'c' });
  clients.push(bob, carol);

  t.test('disco lists each feature', async (t) => {
    const info = await iq(bob, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), DOMAIN);
    const features = info
      .getChild('query')!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    for (const f of ['jabber:iq:version', 'urn:xmpp:time', 'jabber:iq:last', 'vcard-temp', 'jabber:iq:private']) t.ok(features.includes(f), f);
  });

  t.test('XEP-0092: name and version, no operating system by default', async (t) => {
    const reply = await iq(bob, 'get', xml('query', { xmlns: 'jabber:iq:version' }), DOMAIN);
    t.equal(reply.attrs.type, 'result');
    t.equal(reply.attrs.from, DOMAIN);
    const query = reply.getChild('query', 'jabber:iq:version')!;
    t.equal(query.getChildText('name'), 'Starling');
    t.equal(query.getChildText('version'), VERSION);
    t.equal(query.getChild('os'), undefined, 'os is hidden');
    const noTo = await iq(bob, 'get', xml('query', { xmlns: 'jabber:iq:version' }));
    t.equal(noTo.getChild('query')?.getChildText('name'), 'Starling', 'an IQ without to is answered by the server');
  });

  t.test('XEP-0092: show_os = true names the operating system', async (t) => {
    const other = await startTestServer(t, { modules_enabled: ['sasl', 'version'], modules: { version: { show_os: true } } });
    await other.addUser('zed');
    const zed = await connect(other, 'zed');
    t.teardown(() => zed.stop());
    const reply = await iq(zed, 'get', xml('query', { xmlns: 'jabber:iq:version' }), DOMAIN);
    t.ok(reply.getChild('query')!.getChildText('os'), 'os given');
  });

  t.test('XEP-0202: UTC time and offset', async (t) => {
    const reply = await iq(bob, 'get', xml('time', { xmlns: 'urn:xmpp:time' }), DOMAIN);
    const time = reply.getChild('time', 'urn:xmpp:time')!;
    t.match(time.getChildText('tzo'), /^[+-]\d\d:\d\d$/);
    const utc = time.getChildText('utc')!;
    t.match(utc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    t.ok(Math.abs(Date.parse(utc) - Date.now()) < 5000, 'close to now');
  });

  t.test('XEP-0012: the server answers with its uptime', async (t) => {
    const reply = await iq(bob, 'get', xml('query', { xmlns: 'jabber:iq:last' }), DOMAIN);
    t.equal(reply.attrs.type, 'result');
    const seconds = Number(reply.getChild('query')!.attrs.seconds);
    t.ok(seconds >= 0 && seconds < 60, `uptime ${seconds}`);
    t.equal(reply.getChild('query')!.getText(), '', 'no character data');
  });

  t.test('XEP-0012: a user last activity, only for those who may see their presence', async (t) => {
    const alice = await connect(ts, 'alice', { resource: 'a' });
    clients.push(alice);
    const ask = (client: TestClient, who: string) => iq(client, 'get', xml('query', { xmlns: 'jabber:iq:last' }), who);

    const denied = await ask(bob, 'alice@localhost');
    t.equal(denied.attrs.type, 'error');
    t.equal(errorCondition(denied), 'forbidden', 'no subscription: forbidden');

    subscribe('alice@localhost', 'bob@localhost', 'from');
    subscribe('alice@localhost', 'carol@localhost', 'to');
    const online = await ask(bob, 'alice@localhost');
    t.equal(online.attrs.type, 'result');
    t.equal(online.attrs.from, 'alice@localhost');
    t.equal(online.getChild('query')!.attrs.seconds, '0', 'online: 0');
    t.equal(errorCondition(await ask(carol, 'alice@localhost')), 'forbidden', "subscription 'to' does not let the contact see the user");

    const self = await iq(alice, 'get', xml('query', { xmlns: 'jabber:iq:last' }));
    t.equal(self.getChild('query')?.attrs.seconds, '0', 'the user asking about themselves (no to)');

    await alice.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'Heading Home')));
    await alice.stop();
    const offline = await until(async () => {
      const r = await ask(bob, 'alice@localhost');
      return r.attrs.type === 'result' && r.getChild('query')!.getText() !== '' ? r : undefined;
    });
    t.equal(offline.attrs.type, 'result', 'answered once offline');
    t.ok(Number(offline.getChild('query')!.attrs.seconds) >= 0);
    t.equal(offline.getChild('query')!.getText(), 'Heading Home', 'the status of the last unavailable presence');
    await new Promise((r) => setTimeout(r, 1100));
    const later = await ask(bob, 'alice@localhost');
    t.ok(Number(later.getChild('query')!.attrs.seconds) >= 1, 'seconds grow');

    // Connected without presence is not available; the logout time is still given.
    const quiet = await connect(ts, 'alice', { resource: 'quiet', presence: false });
    const meanwhile = await ask(bob, 'alice@localhost');
    t.not(meanwhile.getChild('query')!.attrs.seconds, '0', 'a resource without presence is not available');
    await quiet.stop();
    const noStatus = await until(async () => {
      const r = await ask(bob, 'alice@localhost');
      return r.getChild('query')!.getText() === '' ? r : undefined;
    });
    t.equal(noStatus.getChild('query')!.getText(), '', 'a session that ended without unavailable presence leaves no status');

    subscribe('dave@localhost', 'bob@localhost', 'both');
    t.equal(errorCondition(await ask(bob, 'dave@localhost')), 'item-not-found', 'never logged out: item-not-found');
    t.equal(errorCondition(await ask(bob, 'nobody@localhost')), 'service-unavailable', 'no such account');
  });

  t.test('XEP-0054: vCards', async (t) => {
    const alice = await connect(ts, 'alice', { resource: 'v' });
    clients.push(alice);
    const vcard = (...children: Element[]) => xml('vCard', { xmlns: 'vcard-temp' }, ...children);

    const none = await iq(alice, 'get', vcard());
    t.equal(none.attrs.type, 'result', 'no vCard of ones own: an empty result');
    t.equal(none.getChild('vCard', 'vcard-temp')?.children.length, 0);
    t.equal(errorCondition(await iq(bob, 'get', vcard(), 'alice@localhost')), 'item-not-found', "someone else's missing vCard");

    const set = await iq(alice, 'set', vcard(xml('FN', {}, 'Alice Liddell'), xml('NICKNAME', {}, 'alice'), xml('N', {}, xml('GIVEN', {}, 'Alice'))));
    t.equal(set.attrs.type, 'result');
    const own = await iq(alice, 'get', vcard(), 'alice@localhost');
    t.equal(own.getChild('vCard', 'vcard-temp')?.getChildText('FN'), 'Alice Liddell');
    const seen = await iq(bob, 'get', vcard(), 'alice@localhost');
    t.equal(seen.attrs.type, 'result');
    t.equal(seen.attrs.from, 'alice@localhost');
    const card = seen.getChild('vCard', 'vcard-temp')!;
    t.equal(card.getChildText('NICKNAME'), 'alice');
    t.equal(card.getChild('N')?.getChildText('GIVEN'), 'Alice', 'nested elements kept');

    const replaced = await iq(alice, 'set', vcard(xml('FN', {}, 'Alice')));
    t.equal(replaced.attrs.type, 'result');
    t.equal((await iq(bob, 'get', vcard(), 'alice@localhost')).getChild('vCard')?.getChild('NICKNAME'), undefined, 'a set replaces the whole vCard');

    t.equal(errorCondition(await iq(bob, 'set', vcard(xml('FN', {}, 'Mallory')), 'alice@localhost')), 'forbidden', "setting another's vCard");
    const big = await iq(alice, 'set', vcard(xml('DESC', {}, 'x'.repeat(3000))));
    t.equal(errorCondition(big), 'not-acceptable', 'larger than max_size');
    t.equal((await iq(alice, 'get', vcard())).getChild('vCard')?.getChildText('FN'), 'Alice', 'the refused set changed nothing');
    t.equal(errorCondition(await iq(bob, 'get', vcard(), 'nobody@localhost')), 'service-unavailable', 'no such account');

    await iq(alice, 'set', vcard());
    t.equal((await iq(alice, 'get', vcard())).getChild('vCard')?.children.length, 0, 'an empty set removes it');
    t.equal(errorCondition(await iq(bob, 'get', vcard(), 'alice@localhost')), 'item-not-found');
    await iq(alice, 'set', vcard(xml('FN', {}, 'Alice again')));
  });

  t.test('XEP-0049: private XML storage', async (t) => {
    const alice = await connect(ts, 'alice', { resource: 'p' });
    clients.push(alice);
    const query = (...children: Element[]) => xml('query', { xmlns: 'jabber:iq:private' }, ...children);

    const set = await iq(alice, 'set', query(xml('exodus', { xmlns: 'exodus:prefs' }, xml('defaultnick', {}, 'Hamlet'))));
    t.equal(set.attrs.type, 'result');
    const got = await iq(alice, 'get', query(xml('exodus', { xmlns: 'exodus:prefs' })));
    t.equal(got.attrs.type, 'result');
    t.equal(got.getChild('query')?.getChild('exodus', 'exodus:prefs')?.getChildText('defaultnick'), 'Hamlet');

    const other = await iq(alice, 'get', query(xml('storage', { xmlns: 'storage:bookmarks' })));
    const empty = other.getChild('query')?.getChild('storage', 'storage:bookmarks');
    t.ok(empty, 'nothing stored: the requested element, empty');
    t.equal(empty?.children.length, 0);

    const otherName = await iq(alice, 'get', query(xml('other', { xmlns: 'exodus:prefs' })));
    t.equal(otherName.getChild('query')?.getChild('other')?.children.length, 0, 'keyed by element name and namespace');

    const toSelf = await iq(alice, 'get', query(xml('exodus', { xmlns: 'exodus:prefs' })), 'alice@localhost');
    t.equal(toSelf.attrs.type, 'result', 'to ones own bare JID works too');

    t.equal(errorCondition(await iq(bob, 'get', query(xml('exodus', { xmlns: 'exodus:prefs' })), 'alice@localhost')), 'forbidden', "another user's data");
    t.equal(errorCondition(await iq(bob, 'set', query(xml('exodus', { xmlns: 'exodus:prefs' })), 'alice@localhost')), 'forbidden');
    t.equal(errorCondition(await iq(alice, 'set', query(xml('query', { xmlns: 'jabber:iq:roster' })))), 'not-acceptable', 'jabber:* is reserved');
    t.equal(errorCondition(await iq(alice, 'get', query(xml('vCard', { xmlns: 'vcard-temp' })))), 'not-acceptable', 'vcard-temp is reserved');
    t.equal(errorCondition(await iq(alice, 'get', query())), 'bad-request', 'a get without a child');
    t.equal(errorCondition(await iq(alice, 'set', query())), 'not-acceptable', 'a set without a child');
    t.equal(errorCondition(await iq(alice, 'set', query(xml('nons')))), 'not-acceptable', 'a child without its own namespace');

    const big = await iq(alice, 'set', query(xml('big', { xmlns: 'urn:example:big' }, 'x'.repeat(5000))));
    t.equal(errorCondition(big), 'not-acceptable', 'past max_size');
    const replace = await iq(alice, 'set', query(xml('exodus', { xmlns: 'exodus:prefs' }, xml('defaultnick', {}, 'x'.repeat(3500)))));
    t.equal(replace.attrs.type, 'result', 'replacing an element counts only the new size');
    const reread = await iq(alice, 'get', query(xml('exodus', { xmlns: 'exodus:prefs' })));
    t.equal(reread.getChild('query')?.getChild('exodus')?.getChildText('defaultnick')?.length, 3500);
  });

  t.test('deleting the account deletes what these modules stored', async (t) => {
    const host = DOMAIN;
    const before = await rowsOwnedBy(ts.server.core.storage, host, 'alice');
    t.ok(before.user_data! >= 3, 'vCard, private XML and last-activity rows');
    // The deletion ends alice's sessions; their teardown (last activity) is waited for.
    const ended = sessionsEnded(ts, 'alice');
    await ts.server.core.accounts.delete(parseJid('alice@localhost'));
    await ended;
    const after = await rowsOwnedBy(ts.server.core.storage, host, 'alice');
    for (const [table, n] of Object.entries(after)) t.equal(n, 0, `${table}: no rows left`);
  });
});
