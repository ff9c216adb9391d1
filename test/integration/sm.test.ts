// XEP-0198 stream management over real sockets: acks both ways, resumption after a cut
// connection with every message delivered once and in order, and what happens when it expires.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer } from '../helpers/harness.js';
import { rawAuthenticated, rawLogin, type RawStream } from '../helpers/clients.js';

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
    const enabled = await enable(phone.s);
    t.equal(enabled.attrs.resume, 'true');
    const previd = enabled.attrs.id!;
    await new Promise((r) => setTimeout(r, 100));
    phone.s.elements.length = 0;

    for (let i = 1; i <= 4; i++) sender.s.write(`<message to='bob@localhost/phone' type='chat'><body>m${i}</body></message>`);
    await phone.s.until(() => bodies(phone.s).length === 4);
    phone.s.write(`<a xmlns='${SM}' h='2'/>`); // m1, m2 acknowledged
    await new Promise((r) => setTimeout(r, 100));
    phone.s.close(); // the socket is cut, no closing handshake
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 5; i <= 7; i++) sender.s.write(`<message to='bob@localhost/phone' type='chat'><body>m${i}</body></message>`);
    sender.s.write(`<r xmlns='${SM}'/>`);
    await new Promise((r) => setTimeout(r, 200));

    // A new connection authenticates and resumes (instead of binding).
    const s = await rawAuthenticated(ts.port, 'bob');
    s.write(`<resume xmlns='${SM}' previd='${previd}' h='2'/>`);
    const resumed = await s.element('resumed');
    t.equal(resumed.attrs.previd, previd);
    await s.until(() => bodies(s).length >= 5);
    await new Promise((r) => setTimeout(r, 200));
    t.same(bodies(s), ['m3', 'm4', 'm5', 'm6', 'm7'], 'the unacknowledged and the new, in order, once');
    // The resumed session is the same full JID and goes on working.
    s.elements.length = 0;
    sender.s.write(`<message to='bob@localhost/phone' type='chat'><body>after</body></message>`);
    await s.until(() => bodies(s).includes('after'));
    t.pass('delivery continues after resumption');
    s.write(`<a xmlns='${SM}' h='8'/>`);
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
    await enable(tablet.s);
    await new Promise((r) => setTimeout(r, 100));
    const sender = await rawLogin(ts.port, 'alice', 's2');
    sender.s.write(`<message to='bob@localhost/tablet' type='chat'><body>unacked</body></message>`);
    await tablet.s.until(() => bodies(tablet.s).includes('unacked'));
    tablet.s.close(); // never acknowledged
    await new Promise((r) => setTimeout(r, 2600)); // resume_timeout is 2 s
    const later = await rawLogin(ts.port, 'bob', 'later');
    later.s.write('<presence/>');
    const msg = await later.s.until(() => later.s.elements.find((e) => e.name === 'message' && e.getChildText('body') === 'unacked'));
    t.ok(msg.getChild('delay', 'urn:xmpp:delay'), 'delivered from offline storage, with a delay');
    later.s.close();
    sender.s.close();
  });
});
