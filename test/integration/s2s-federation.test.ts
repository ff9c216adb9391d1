// Federation between two Starlings in one process (a.localhost and b.localhost), linked by
// static routes: dialback over STARTTLS between self-signed certificates, SASL EXTERNAL with
// certificates from a test CA, direct TLS, messages, subscriptions, presence, rosters with
// remote contacts, IQs and errors both ways, the queue while a stream is set up, and one
// stream per domain pair.
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { connectTo, errorCondition, link, makeTestCa, startFederated, xml, type FedClient, type FederatedServer } from './s2s-helpers.js';

const ROSTER = 'jabber:iq:roster';
const isMessageFrom = (from: string, body?: string) => (el: Element) =>
  el.name === 'message' && el.attrs.from === from && el.attrs.type !== 'error' && (body === undefined || el.getChildText('body') === body);
const presenceFrom = (from: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from === from && el.attrs.type === type;
const rosterPush = (jid: string, subscription: string) => (el: Element) =>
  el.name === 'iq' &&
  el.attrs.type === 'set' &&
  el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === jid &&
  el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === subscription;

function outgoing(ts: FederatedServer) {
  return ts.server.s2s.connections().filter((c) => c.direction === 'out');
}
function incoming(ts: FederatedServer) {
  return ts.server.s2s.connections().filter((c) => c.direction === 'in');
}

async function pair(t: Test, s2sA: Record<string, unknown> = {}, s2sB: Record<string, unknown> = {}, extraA = {}, extraB = {}) {
  const a = await startFederated(t, 'a.localhost', s2sA, extraA);
  const b = await startFederated(t, 'b.localhost', s2sB, extraB);
  link(a, b);
  await a.user('alice');
  await b.user('bob');
  const alice = await connectTo(a, 'alice', 'desk');
  const bob = await connectTo(b, 'bob', 'phone');
  t.teardown(() => Promise.all([alice.stop(), bob.stop()]));
  return { a, b, alice, bob };
}

/** Messages both ways, checked for sender and body. */
async function exchange(t: Test, alice: FedClient, bob: FedClient, tag: string) {
  await alice.send(xml('message', { to: bob.jid, type: 'chat', id: `${tag}-1` }, xml('body', {}, `hello bob ${tag} ✓ <&>`)));
  const m1 = await bob.next(isMessageFrom(alice.jid));
  t.equal(m1.getChildText('body'), `hello bob ${tag} ✓ <&>`, `${tag}: a -> b, body intact`);
  t.equal(m1.attrs.to, bob.jid, `${tag}: a -> b, to the full JID`);
  await bob.send(xml('message', { to: 'alice@a.localhost', type: 'chat', id: `${tag}-2` }, xml('body', {}, `hello alice ${tag}`)));
  const m2 = await alice.next(isMessageFrom(bob.jid));
  t.equal(m2.getChildText('body'), `hello alice ${tag}`, `${tag}: b -> a (bare JID), from bob's full JID`);
}

t.test('dialback over STARTTLS between self-signed certificates', async (t) => {
  const { a, b, alice, bob } = await pair(t);

  await exchange(t, alice, bob, 'dialback');
  t.match(outgoing(a), [{ local: 'a.localhost', remote: 'b.localhost', secure: true, directTls: false, auth: ['dialback'], ready: true }], 'a -> b: one TLS stream, dialback');
  t.match(
    incoming(a),
    [{ local: 'a.localhost', remote: 'b.localhost', secure: true, auth: ['b.localhost:dialback'] }],
    'b -> a arrives on one TLS stream, b.localhost verified by dialback',
  );
  t.match(outgoing(b), [{ remote: 'a.localhost', auth: ['dialback'], secure: true }]);

  t.test('more messages reuse the one stream per domain pair', async (t) => {
    for (let i = 0; i < 5; i++) await alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, `n${i}`)));
    for (let i = 0; i < 5; i++) t.ok(await bob.next(isMessageFrom(alice.jid, `n${i}`)), `message ${i} arrived`);
    t.equal(outgoing(a).length, 1, 'still one outgoing stream');
    t.equal(incoming(b).length, 1, 'and one incoming at b');
  });

  t.test('subscriptions, presence and rosters with remote contacts', async (t) => {
    await alice.iq('get', undefined, xml('query', { xmlns: ROSTER }));
    await bob.iq('get', undefined, xml('query', { xmlns: ROSTER }));
    await alice.send(xml('presence', { to: 'bob@b.localhost', type: 'subscribe' }));
    const ask = await alice.next((el) => el.name === 'iq' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.ask === 'subscribe');
    t.equal(ask.getChild('query')!.getChild('item')!.attrs.jid, 'bob@b.localhost', "the remote contact is on alice's roster, pending");
    const request = await bob.next(presenceFrom('alice@a.localhost', 'subscribe'));
    t.ok(request, 'bob gets the subscription request from the other server');

    await bob.send(xml('presence', { to: 'alice@a.localhost', type: 'subscribed' }));
    t.ok(await bob.next(rosterPush('alice@a.localhost', 'from')), "bob's roster: alice, from");
    t.ok(await alice.next(rosterPush('bob@b.localhost', 'to')), "alice's roster: bob, to (the approval crossed)");
    t.ok(await alice.next(presenceFrom('bob@b.localhost', 'subscribed')), 'alice is told');
    t.ok(await alice.next(presenceFrom(bob.jid)), "and gets bob's presence from b");

    // And the other way round, so both have 'both'.
    await bob.send(xml('presence', { to: 'alice@a.localhost', type: 'subscribe' }));
    t.ok(await alice.next(presenceFrom('bob@b.localhost', 'subscribe')), 'alice gets bob’s request');
    await alice.send(xml('presence', { to: 'bob@b.localhost', type: 'subscribed' }));
    t.ok(await bob.next(rosterPush('alice@a.localhost', 'both')), "bob's roster: both");
    t.ok(await alice.next(rosterPush('bob@b.localhost', 'both')), "alice's roster: both");
    t.ok(await bob.next(presenceFrom(alice.jid)), "bob gets alice's presence");

    await bob.send(xml('presence', {}, xml('show', {}, 'away'), xml('status', {}, 'out')));
    const away = await alice.next((el) => presenceFrom(bob.jid)(el) && el.getChildText('show') === 'away');
    t.equal(away.getChildText('status'), 'out', 'a presence change crosses');

    const roster = await alice.iq('get', undefined, xml('query', { xmlns: ROSTER }));
    t.match(
      roster
        .getChild('query')!
        .getChildren('item')
        .map((i) => i.attrs),
      [{ jid: 'bob@b.localhost', subscription: 'both' }],
    );

    t.test('a probe at login goes to the other server and gets its answer', async (t) => {
      const alice2 = await connectTo(a, 'alice', 'laptop');
      t.teardown(() => alice2.stop());
      const p = await alice2.next((el) => presenceFrom(bob.jid)(el) && el.getChildText('show') === 'away');
      t.ok(p, "alice's new resource learns bob's presence through a probe");
      t.ok(await bob.next(presenceFrom(alice2.jid)), "bob sees alice's new resource");
      await alice2.stop();
      t.ok(await bob.next(presenceFrom(alice2.jid, 'unavailable')), 'and unavailable when it goes');
    });
  });

  t.test('IQs: version, ping, vCard, and errors back to the sender', async (t) => {
    const version = await alice.iq('get', 'b.localhost', xml('query', { xmlns: 'jabber:iq:version' }));
    t.equal(version.attrs.type, 'result', 'version of the remote server');
    t.equal(version.attrs.from, 'b.localhost');
    t.equal(version.getChild('query')!.getChildText('name'), 'Starling');

    const ping = await bob.iq('get', 'a.localhost', xml('ping', { xmlns: 'urn:xmpp:ping' }));
    t.equal(ping.attrs.type, 'result', 'ping of the remote server');
    const pingFull = await alice.iq('get', bob.jid, xml('ping', { xmlns: 'urn:xmpp:ping' }));
    t.equal(pingFull.attrs.type, 'result', "ping of a remote client (bob's client answers)");

    const set = await bob.iq('set', undefined, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Bob Remote')));
    t.equal(set.attrs.type, 'result');
    const card = await alice.iq('get', 'bob@b.localhost', xml('vCard', { xmlns: 'vcard-temp' }));
    t.equal(card.attrs.type, 'result', "bob's vCard fetched from the other server");
    t.equal(card.getChild('vCard')!.getChildText('FN'), 'Bob Remote');

    const unknown = await alice.iq('get', 'b.localhost', xml('query', { xmlns: 'urn:example:nothing' }));
    t.equal(errorCondition(unknown), 'service-unavailable', 'an IQ nobody handles: the remote error comes back');
    t.equal(unknown.attrs.from, 'b.localhost');

    await alice.send(xml('message', { to: 'nobody@b.localhost', type: 'chat', id: 'to-nobody' }, xml('body', {}, 'hello?')));
    const bounced = await alice.next((el) => el.name === 'message' && el.attrs.id === 'to-nobody');
    t.equal(bounced.attrs.type, 'error');
    t.equal(errorCondition(bounced), 'service-unavailable', 'a message to a remote account that does not exist comes back as an error');
    t.equal(bounced.attrs.from, 'nobody@b.localhost');
  });
});

t.test('stanzas sent before the stream is up wait for it and arrive in order', async (t) => {
  const { alice, bob } = await pair(t);
  // Sent in one go: the first starts the connection, the rest queue behind it.
  for (let i = 0; i < 20; i++) void alice.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, `q${i}`)));
  const got: string[] = [];
  for (let i = 0; i < 20; i++) got.push((await bob.next((el) => el.name === 'message' && el.attrs.type === 'chat')).getChildText('body')!);
  t.same(
    got,
    Array.from({ length: 20 }, (_, i) => `q${i}`),
    'all 20, in order',
  );
});

t.test('SASL EXTERNAL both ways with certificates from a CA both trust (secure_auth)', async (t) => {
  const ca = makeTestCa(t);
  const certA = ca.issue('a.localhost');
  const certB = ca.issue('b.localhost', { dnsId: false, srvId: true, cn: 'host17.example' });
  const s2s = { secure_auth: true, ca_files: [ca.caFile] };
  const { a, b, alice, bob } = await pair(
    t,
    s2s,
    s2s,
    { hosts: { 'a.localhost': { certificate: certA.cert, key: certA.key } } },
    { hosts: { 'b.localhost': { certificate: certB.cert, key: certB.key } } },
  );
  await exchange(t, alice, bob, 'external');
  t.match(outgoing(a), [{ remote: 'b.localhost', auth: ['sasl-external'], secure: true }], 'a authenticated to b with SASL EXTERNAL');
  t.match(outgoing(b), [{ remote: 'a.localhost', auth: ['sasl-external'], secure: true }], 'b authenticated to a with SASL EXTERNAL (its certificate names it by SRV-ID only)');
  t.match(incoming(a), [{ auth: ['b.localhost:sasl-external'] }]);
  t.match(incoming(b), [{ auth: ['a.localhost:sasl-external'] }]);
});

t.test('secure_auth refuses a server whose certificate is not trusted', async (t) => {
  const { alice, bob } = await pair(t, { secure_auth: true });

  await alice.send(xml('message', { to: 'bob@b.localhost', id: 'strict-out' }, xml('body', {}, 'x')));
  const out = await alice.next((el) => el.attrs.id === 'strict-out');
  t.equal(errorCondition(out), 'remote-server-not-found', "a does not send to b: b's certificate is self-signed");
  t.match(out.getChild('error')!.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas'), /certificate/);

  await bob.send(xml('message', { to: 'alice@a.localhost', id: 'strict-in' }, xml('body', {}, 'y')));
  const back = await bob.next((el) => el.attrs.id === 'strict-in');
  t.equal(back.attrs.type, 'error', 'b cannot send to a either: a refuses dialback without a valid certificate');
  t.equal(errorCondition(back), 'remote-server-timeout', 'b returns it as a dialback error (remote-server-timeout)');
});

t.test('direct TLS (XEP-0368) to an xmpps:// route', async (t) => {
  const { a, b, alice, bob } = await pair(
    t,
    {},
    {
      listeners: [
        { interfaces: ['127.0.0.1'], port: 0, direct_tls: false },
        { interfaces: ['127.0.0.1'], port: 0, direct_tls: true },
      ],
    },
  );
  const directPort = b.server.s2sAddresses.find((x) => x.directTls)!.port;
  a.server.s2s.addRoute('b.localhost', `xmpps://127.0.0.1:${directPort}`);
  await exchange(t, alice, bob, 'direct');
  t.match(outgoing(a), [{ remote: 'b.localhost', directTls: true, secure: true, auth: ['dialback'] }], 'a -> b over direct TLS');
  t.match(incoming(b), [{ directTls: true, secure: true }]);
});

t.test('an idle outgoing stream is closed, and the next stanza opens a new one', async (t) => {
  const { a, b, alice, bob } = await pair(t, { idle_timeout: 0.5 }, { idle_timeout: 0.5 });
  await exchange(t, alice, bob, 'idle-1');
  t.equal(outgoing(a).length, 1);
  const deadline = Date.now() + 5000;
  while ((outgoing(a).length > 0 || incoming(b).length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(outgoing(a).length, 0, 'a closed its idle stream to b');
  t.equal(incoming(b).length, 0, 'and b saw it go');
  await exchange(t, alice, bob, 'idle-2');
  t.equal(outgoing(a).length, 1, 'a new stream carried the next message');
});
