// XEP-0198 stream management over real sockets: acks both ways, resumption after a cut
// connection with every message delivered once and in order, and what happens when it expires.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { nextHook, sessionsEnded, startTestServer } from '../helpers/harness.js';
import { rawAuthenticated, rawLogin, rawRoundTrip, type RawStream } from '../helpers/clients.js';

const SM = 'urn:xmpp:sm:3';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm'];

const bodies = (s: RawStream) => s.elements.filter((e) => e.name === 'message').map((e) => e.getChildText('body'));

async function enable(s: RawStream, resume = true): Promise<Element> {
  s.write(`<enable xmlns='${SM}'${resume ? " resume='true'" : ''}/>`);
  return s.element('enabled');
}

t.test('stream management', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { sm: { resume_timeout: 2, request_ack_every: 100 } } });
  await ts.addUser('alice');
  await ts.addUser('bob');

  t.test('the server counts handled stanzas and answers <r/>', async (t) => {
    const { s } = await rawLogin(ts.port, 'alice', 'counter');
    const enabled = await enable(s, false);
    t.notOk(enabled.attrs.id, 'no id without resume');
    for (let i = 0; i < 3; i++) s.write(`<message to='bob@localhost' type='headline'><body>n${i}</body></message>`);
    s.write(`<r xmlns='${SM}'/>`);
    const a = await s.element('a');
    t.equal(a.attrs.h, '3');
    s.close();
  });

  t.test('a cut connection resumes: every message once, in order', async (t) => {
    const sender = await rawLogin(ts.port, 'alice', 'sender');
    const phone = await rawLogin(ts.port, 'bob', 'phone');
    phone.s.write('<presence/>');
    await rawRoundTrip(phone.s); // what the presence brings is in (before enabling: not counted)
    const enabled = await enable(phone.s);
    t.equal(enabled.attrs.resume, 'true');
    const previd = enabled.attrs.id!;
    phone.s.elements.length = 0;

    for (let i = 1; i <= 4; i++) sender.s.write(`<message to='bob@localhost/phone' type='chat'><body>m${i}</body></message>`);
    await phone.s.until(() => bodies(phone.s).length === 4);
    phone.s.write(`<a xmlns='${SM}' h='2'/>`); // m1, m2 acknowledged
    phone.s.write(`<r xmlns='${SM}'/>`);
    await phone.s.element('a'); // the server's answer: it handled the <a/> before it
    const interrupted = nextHook(ts, 'session/interrupted');
    phone.s.close(); // the socket is cut, no closing handshake
    await interrupted; // the server saw it and keeps the session
    for (let i = 5; i <= 7; i++) sender.s.write(`<message to='bob@localhost/phone' type='chat'><body>m${i}</body></message>`);
    await rawRoundTrip(sender.s); // m5..m7 are handled: in the kept session's queue

    // A new connection authenticates and resumes (instead of binding).
    const s = await rawAuthenticated(ts.port, 'bob');
    s.write(`<resume xmlns='${SM}' previd='${previd}' h='2'/>`);
    const resumed = await s.element('resumed');
    t.equal(resumed.attrs.previd, previd);
    await s.until(() => bodies(s).length >= 5);
    await rawRoundTrip(s); // anything more sent again would be in before the answer
    t.same(bodies(s), ['m3', 'm4', 'm5', 'm6', 'm7'], 'the unacknowledged and the new, in order, once');
    // The resumed session is the same full JID and goes on working.
    s.elements.length = 0;
    sender.s.write(`<message to='bob@localhost/phone' type='chat'><body>after</body></message>`);
    await s.until(() => bodies(s).includes('after'));
    t.pass('delivery continues after resumption');
    s.write(`<a xmlns='${SM}' h='9'/>`); // m3..m7, the ping's answer, 'after'
    s.write('</stream:stream>');
    sender.s.close();
  });

  t.test('an unknown or expired previd gets <failed/>', async (t) => {
    const r = await rawAuthenticated(ts.port, 'bob');
    r.write(`<resume xmlns='${SM}' previd='nope' h='0'/>`);
    const failed = await r.element('failed');
    t.ok(failed.getChild('item-not-found'));
    r.close();
  });

  t.test('when resumption time runs out, unacknowledged messages go to offline storage', async (t) => {
    const tablet = await rawLogin(ts.port, 'bob', 'tablet');
    tablet.s.write('<presence/>');
    await rawRoundTrip(tablet.s);
    await enable(tablet.s);
    const sender = await rawLogin(ts.port, 'alice', 's2');
    sender.s.write(`<message to='bob@localhost/tablet' type='chat'><body>unacked</body></message>`);
    await tablet.s.until(() => bodies(tablet.s).includes('unacked'));
    const receivedBy = Date.now();
    const expired = sessionsEnded(ts, 'bob'); // the tablet's, kept for resume_timeout (2 s), then ended
    tablet.s.close(); // never acknowledged
    await expired;
    const later = await rawLogin(ts.port, 'bob', 'later');
    later.s.write('<presence/>');
    const msg = await later.s.until(() => later.s.elements.find((e) => e.name === 'message' && e.getChildText('body') === 'unacked'));
    const stamp = Date.parse(msg.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp ?? '');
    t.ok(stamp <= receivedBy, 'delivered from offline storage, with the delay of when the server received it');
    later.s.close();
    sender.s.close();
  });
});

t.test('a kept session that expires leaves no duplicates and no stale replies', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: [...MODULES, 'carbons'],
    modules: { sm: { resume_timeout: 1, request_ack_every: 100 } },
  });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const carbons = (s: RawStream) => {
    s.write("<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    return s.until(() => s.elements.find((e) => e.name === 'iq' && e.attrs.id === 'carbons'));
  };
  const ping = async (s: RawStream, id: string) => {
    s.write(`<iq type='get' id='${id}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await s.until(() => s.elements.find((e) => e.name === 'iq' && e.attrs.id === id));
  };
  const alice = (await rawLogin(ts.port, 'alice', 'desk')).s;
  alice.write('<presence/>');
  const laptop = (await rawLogin(ts.port, 'bob', 'laptop')).s;
  laptop.write('<presence/>');
  await carbons(laptop);
  const tablet = (await rawLogin(ts.port, 'bob', 'tablet')).s;
  tablet.write('<presence/>');
  await carbons(tablet);
  await enable(tablet);

  // The tablet gets: a message the laptop sees as a carbon, one to the bare JID (both get it),
  // a <sent/> carbon of what the laptop writes, a private one only it has, and a ping that it
  // answers; alice's result to its own ping is still on its way when the connection drops.
  alice.write("<message to='bob@localhost/tablet' type='chat' id='copied'><body>copied</body></message>");
  alice.write("<message to='bob@localhost' type='chat' id='both'><body>both</body></message>");
  laptop.write("<message to='alice@localhost' type='chat' id='fromlaptop'><body>from laptop</body></message>");
  alice.write("<message to='bob@localhost/tablet' type='chat' id='private'><body>only the tablet</body><private xmlns='urn:xmpp:carbons:2'/></message>");
  const ids = ['copied', 'both', 'fromlaptop', 'private'];
  const has = (s: RawStream, id: string) => s.elements.some((e) => e.name === 'message' && e.toString().includes(id));
  await tablet.until(() => ids.every((id) => has(tablet, id)));
  await ping(laptop, 'l1');
  const sentAt = Date.now();
  tablet.write("<iq type='get' id='tablet-ping' to='alice@localhost/desk'><ping xmlns='urn:xmpp:ping'/></iq>");
  const asked = await alice.until(() => alice.elements.find((e) => e.name === 'iq' && e.attrs.id === 'tablet-ping'));
  const interrupted = nextHook(ts, 'session/interrupted');
  tablet.close(); // cut, nothing acknowledged
  const kept = (await interrupted).session;
  alice.write(`<iq type='result' id='tablet-ping' to='${asked.attrs.from}'/>`);
  await ping(alice, 'a1');
  laptop.elements.length = 0;

  // The same resource comes back without resuming: the kept session ends at once. What only
  // it had goes to the account once, as an offline message (to the laptop, online, or to the
  // new tablet, whichever takes offline messages first).
  const keptEnded = nextHook(ts, 'session/closed', (e) => e.session === kept);
  const again = (await rawLogin(ts.port, 'bob', 'tablet')).s;
  again.write('<presence/>');
  const messages = () => [...again.elements, ...laptop.elements].filter((e) => e.name === 'message');
  const got = await again.until(() => messages().find((e) => e.attrs.id === 'private'));
  await keptEnded; // the kept session ended (its resumption timer is cleared then) and its queue is re-routed
  await ping(again, 'g1');
  await ping(laptop, 'l2');
  t.same(
    messages().map((m) => m.attrs.id),
    ['private'],
    'only what no other resource has, once; no carbons',
  );
  const stamp = Date.parse(got.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp ?? '');
  t.ok(stamp <= sentAt, 'its delay is when the server received it, not when it was re-routed');
  t.notOk(
    again.elements.some((e) => e.name === 'iq' && e.attrs.id === 'tablet-ping'),
    "the old session's IQ result is not delivered to the new one",
  );
  for (const s of [alice, laptop, again]) s.close();
});
