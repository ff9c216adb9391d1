// XEP-0280 message carbons over real sockets: three resources of one user and a second user,
// copies of what is received and what is sent, messages to the bare JID that reach several
// resources, the <private/> opt-out, the eligibility rules, disabling, and Bind 2 inline.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer, DOMAIN, type TestServer } from '../helpers/harness.js';
import { bind2Inline, connect, sasl2Bind, xml, RawStream, type TestClient } from '../helpers/clients.js';

const CARBONS = 'urn:xmpp:carbons:2';
const FORWARD = 'urn:xmpp:forward:0';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'carbons'];
let ids = 0;

interface Client extends TestClient {
  /** Every stanza received since connect, in order. */
  log: Element[];
}

async function login(ts: TestServer, local: string, resource: string): Promise<Client> {
  const c = await connect(ts, local, { resource });
  const log: Element[] = [];
  c.xmpp.on('stanza', (el: Element) => log.push(el));
  return Object.assign(c, { log });
}

async function iq(c: TestClient, type: 'get' | 'set', payload: Element, to?: string): Promise<Element> {
  const id = `c${++ids}`;
  await c.send(xml('iq', { type, id, ...(to ? { to } : {}) }, payload));
  return c.next((el) => el.name === 'iq' && el.attrs.id === id);
}

/**
 * A round trip to the server: anything the server wrote to this client before the answer was
 * written (a copy made while routing an earlier message) has arrived once it returns.
 */
const settle = (c: TestClient) => iq(c, 'get', xml('ping', { xmlns: 'urn:xmpp:ping' }));

const enable = (c: TestClient, on = true) => iq(c, 'set', xml(on ? 'enable' : 'disable', { xmlns: CARBONS }));

/** The message inside a carbon of `kind`, or undefined. */
function carried(el: Element, kind: 'sent' | 'received'): Element | undefined {
  if (el.name !== 'message') return undefined;
  return el.getChild(kind, CARBONS)?.getChild('forwarded', FORWARD)?.getChild('message');
}

const isCarbon = (kind: 'sent' | 'received', body: string) => (el: Element) => carried(el, kind)?.getChildText('body') === body;
const hasBody = (body: string) => (el: Element) => el.name === 'message' && el.getChildText('body') === body;
/** Everything in the log that carries `marker`: as the original, or inside a carbon. */
const seen = (c: Client, marker: string) => c.log.filter((el) => el.name === 'message' && (el.getChildText('body') === marker || el.toString().includes(marker)));

t.test('message carbons', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const a1 = await login(ts, 'alice', 'one');
  const a2 = await login(ts, 'alice', 'two');
  const a3 = await login(ts, 'alice', 'three'); // never enables carbons
  const b = await login(ts, 'bob', 'desk');
  t.teardown(() => Promise.all([a1, a2, a3, b].map((c) => c.stop())));
  const all = [a1, a2, a3, b];
  const settleAll = () => Promise.all(all.map(settle));

  t.test('the server advertises carbons and the recommended rules', async (t) => {
    const info = await iq(a1, 'get', xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }), DOMAIN);
    const vars = info
      .getChild('query')!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    t.ok(vars.includes(CARBONS), CARBONS);
    t.ok(vars.includes('urn:xmpp:carbons:rules:0'), 'urn:xmpp:carbons:rules:0');
  });

  t.test('enabling: without a "to", to the own bare JID, twice; never for another account', async (t) => {
    t.equal((await enable(a1)).attrs.type, 'result');
    t.equal((await enable(a1)).attrs.type, 'result', 'a second enable is no error (§10.1)');
    t.equal((await iq(a2, 'set', xml('enable', { xmlns: CARBONS }), 'alice@localhost')).attrs.type, 'result', "to the account's bare JID");
    const other = await iq(a2, 'set', xml('enable', { xmlns: CARBONS }), 'bob@localhost');
    t.equal(other.attrs.type, 'error');
    t.ok(other.getChild('error')?.getChild('not-allowed'), "another account's carbons: <not-allowed/>");
  });

  t.test('received: copies to the other enabled resources, none to the one that got it', async (t) => {
    await b.send(xml('message', { to: a1.jid, type: 'chat', id: 'r1' }, xml('body', {}, 'to one')));
    const original = await a1.next(hasBody('to one'));
    t.notOk(original.getChild('received', CARBONS), 'a1 gets the message itself');
    const copy = await a2.next(isCarbon('received', 'to one'));
    t.equal(copy.attrs.from, 'alice@localhost', "from the user's bare JID");
    t.equal(copy.attrs.to, a2.jid, 'to the receiving resource');
    t.equal(copy.attrs.type, 'chat', 'the same type');
    const inner = carried(copy, 'received')!;
    t.equal(inner.attrs.from, b.jid);
    t.equal(inner.attrs.to, a1.jid);
    t.equal(inner.attrs.xmlns, 'jabber:client', 'the forwarded message is in jabber:client');
    await settleAll();
    t.equal(seen(a1, 'to one').length, 1, 'a1: only the original, no copy');
    t.equal(seen(a2, 'to one').length, 1, 'a2: one copy');
    t.equal(seen(a3, 'to one').length, 0, 'a3 (carbons off): nothing');
  });

  t.test('sent: copies to the other enabled resources, none to the sender', async (t) => {
    await a1.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'from one')));
    await b.next(hasBody('from one'));
    const copy = await a2.next(isCarbon('sent', 'from one'));
    t.equal(copy.attrs.from, 'alice@localhost');
    t.equal(copy.attrs.to, a2.jid);
    const inner = carried(copy, 'sent')!;
    t.equal(inner.attrs.from, a1.jid, 'the original, from the sending resource');
    t.equal(inner.attrs.to, 'bob@localhost');
    await settleAll();
    t.equal(seen(a1, 'from one').length, 0, 'the sender gets no copy');
    t.equal(seen(a3, 'from one').length, 0, 'a3 (carbons off): nothing');

    // A client without carbons still has its messages copied to those that enabled them (§8).
    await a3.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'from three')));
    await a1.next(isCarbon('sent', 'from three'));
    await a2.next(isCarbon('sent', 'from three'));
    t.pass('a message from a resource without carbons is copied to both enabled ones');
  });

  t.test('to the bare JID: no copy to a resource that got the original', async (t) => {
    // All three at priority 0: each gets the message itself (RFC 6121 §8.5.2.1.1), no copies.
    await b.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'to all')));
    for (const c of [a1, a2, a3]) await c.next(hasBody('to all'));
    await settleAll();
    for (const c of [a1, a2, a3]) t.equal(seen(c, 'to all').length, 1, `${c.jid}: the original only`);

    // a3 raises its priority: it alone gets the message; the enabled ones get copies.
    await a3.send(xml('presence', {}, xml('priority', {}, '5')));
    await settleAll();
    await b.send(xml('message', { to: 'alice@localhost', type: 'chat' }, xml('body', {}, 'to the top')));
    await a3.next(hasBody('to the top'));
    await a1.next(isCarbon('received', 'to the top'));
    await a2.next(isCarbon('received', 'to the top'));
    await settleAll();
    for (const c of [a1, a2, a3]) t.equal(seen(c, 'to the top').length, 1, `${c.jid}: exactly one`);
    await a3.send(xml('presence'));
    await settleAll();
  });

  t.test('to the own account: every other resource sees it once', async (t) => {
    await a1.send(xml('message', { to: a3.jid, type: 'chat' }, xml('body', {}, 'note to self')));
    await a3.next(hasBody('note to self'));
    await a2.next(isCarbon('received', 'note to self'));
    await settleAll();
    t.equal(seen(a1, 'note to self').length, 0, 'the sender: nothing back');
    t.equal(seen(a2, 'note to self').length, 1, 'a2: one copy (no <sent/> and <received/> both)');
    t.equal(seen(a3, 'note to self').length, 1);
  });

  t.test('<private/> with <no-copy/>: no copies either way; removed for the recipient', async (t) => {
    const privately = (body: string) => [xml('body', {}, body), xml('private', { xmlns: CARBONS }), xml('no-copy', { xmlns: 'urn:xmpp:hints' })];
    await a1.send(xml('message', { to: b.jid, type: 'chat' }, ...privately('secret out')));
    const got = await b.next(hasBody('secret out'));
    t.notOk(got.getChild('private', CARBONS), 'the receiving server removed <private/> (§9)');
    await b.send(xml('message', { to: a1.jid, type: 'chat' }, ...privately('secret in')));
    const received = await a1.next(hasBody('secret in'));
    t.notOk(received.getChild('private', CARBONS), 'removed for a local recipient');
    await settleAll();
    t.equal(seen(a2, 'secret out').length, 0, 'no <sent/> copy');
    t.equal(seen(a2, 'secret in').length, 0, 'no <received/> copy');
  });

  t.test('eligibility (§6.1)', async (t) => {
    const send = (from: TestClient, to: string, type: string | undefined, marker: string, ...payload: Element[]) =>
      from.send(xml('message', { to, ...(type ? { type } : {}) }, xml('thread', {}, marker), ...payload));
    const copied = async (marker: string) => {
      await settleAll();
      return seen(a2, marker).length > 0;
    };
    // Received by a1, a copy to a2 or not.
    await send(b, a1.jid, 'normal', 'elig-normal-body', xml('body', {}, 'hi'));
    t.ok(await copied('elig-normal-body'), 'normal with a body: copied');
    await send(b, a1.jid, undefined, 'elig-normal-empty', xml('x', { xmlns: 'urn:example:data' }));
    t.notOk(await copied('elig-normal-empty'), 'normal without a body or IM payload: not copied');
    await send(b, a1.jid, undefined, 'elig-receipt', xml('received', { xmlns: 'urn:xmpp:receipts', id: 'r1' }));
    t.ok(await copied('elig-receipt'), 'a delivery receipt: copied');
    await send(b, a1.jid, 'chat', 'elig-chat-state', xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }));
    t.ok(await copied('elig-chat-state'), 'a chat state (type chat): copied (§10.2)');
    await send(b, a1.jid, 'elig-headline', 'elig-headline', xml('body', {}, 'news'));
    t.notOk(await copied('elig-headline'), 'headline: not copied');
    await send(b, a1.jid, 'elig-groupchat', 'elig-groupchat', xml('body', {}, 'room'));
    t.notOk(await copied('elig-groupchat'), 'groupchat: not copied');
    const mucPm = xml('x', { xmlns: 'http://jabber.org/protocol/muc#user' });
    await send(b, a1.jid, 'chat', 'elig-muc-pm-in', xml('body', {}, 'pm'), mucPm);
    t.notOk(await copied('elig-muc-pm-in'), 'a MUC private message from an occupant (full JID): not copied');
    // Sent by a1.
    await send(a1, b.jid, 'chat', 'elig-muc-pm-out', xml('body', {}, 'pm'), xml('x', { xmlns: 'http://jabber.org/protocol/muc#user' }));
    t.ok(await copied('elig-muc-pm-out'), 'a MUC private message to an occupant (full JID): copied');
    await send(a1, b.jid, 'chat', 'elig-carbon-in-carbon', xml('sent', { xmlns: CARBONS }));
    t.notOk(await copied('elig-carbon-in-carbon'), 'something that is a carbon already: not copied');
  });

  t.test('disabling stops the copies', async (t) => {
    t.equal((await enable(a2, false)).attrs.type, 'result');
    t.equal((await enable(a2, false)).attrs.type, 'result', 'twice is no error');
    await b.send(xml('message', { to: a3.jid, type: 'chat' }, xml('body', {}, 'after disable')));
    await a3.next(hasBody('after disable'));
    await a1.next(isCarbon('received', 'after disable'));
    await settleAll();
    t.equal(seen(a2, 'after disable').length, 0, 'a2 (disabled): nothing');
  });

  t.test('Bind 2: carbons enabled inline (XEP-0386)', async (t) => {
    const { s, features } = await RawStream.started(ts.tlsPort, true);
    t.teardown(() => s.close());
    t.ok(bind2Inline(features).includes(CARBONS), 'offered inline');
    const jid = await sasl2Bind(s, 'alice', 'inline', `<enable xmlns='${CARBONS}'/>`);
    t.match(jid, /^alice@localhost\/inline\//);
    s.write('<presence/>');
    await b.send(xml('message', { to: a1.jid, type: 'chat' }, xml('body', {}, 'inline copy')));
    const copy = await s.until(() => s.elements.find((el) => isCarbon('received', 'inline copy')(el)));
    t.equal(copy.attrs.to, jid);
  });
});
