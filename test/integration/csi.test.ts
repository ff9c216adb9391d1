// XEP-0352 client state indication over real sockets: what an inactive client is spared until
// something urgent comes or it is active again, in order and without losses; the buffer
// limit; stream management counting held stanzas when they are really sent; resumption; a
// session that ends with stanzas held; Bind 2 inline.
import t from 'tap';
import type { Element } from '@xmpp/xml';
import { startTestServer, PASSWORD } from '../helpers/harness.js';
import { nextHook, sessionsEnded } from '../helpers/harness.js';
import { bind2Inline, connect, rawAuthenticated, rawLogin, rawRoundTrip, sasl2Bind, xml, RawStream } from '../helpers/clients.js';

const CSI = 'urn:xmpp:csi:0';
const SM = 'urn:xmpp:sm:3';
const CHATSTATES = 'http://jabber.org/protocol/chatstates';
const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'offline', 'sm', 'csi'];
const MAX_BUFFER = 4;

const STANZA = new Set(['message', 'presence', 'iq']);
const stanzas = (s: RawStream) => s.elements.filter((e) => STANZA.has(e.name));
const fromBob = (el: Element) => el.attrs.from?.startsWith('bob@localhost') === true;
/** A short description of a stanza from bob, for comparing sequences. */
function describe(el: Element): string {
  if (el.name === 'presence') return `presence:${el.getChildText('show') ?? 'available'}`;
  if (el.name === 'iq') return `iq:${el.attrs.id}`;
  const body = el.getChildText('body');
  if (body !== null) return `body:${body}`;
  const state = el.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === CHATSTATES);
  if (state) return `state:${state.name}:${el.attrs.id}`;
  return `message:${el.attrs.id}`;
}
const seq = (s: RawStream) => stanzas(s).filter(fromBob).map(describe);

t.test('client state indication', async (t) => {
  const ts = await startTestServer(t, {
    modules_enabled: MODULES,
    modules: { csi: { max_buffer: MAX_BUFFER }, sm: { resume_timeout: 5, request_ack_every: 1 } },
  });
  await ts.addUser('alice');
  await ts.addUser('bob');
  const bob = await connect(ts, 'bob', { resource: 'desk' });
  t.teardown(() => bob.stop());

  // alice subscribes to bob's presence once; each alice session below then gets bob's updates.
  {
    const { s } = await rawLogin(ts.port, 'alice', 'setup');
    s.write("<presence to='bob@localhost' type='subscribe'/>");
    await bob.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe');
    await bob.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
    s.write('<presence/>');
    // Subscribed: bob's server sends his current presence (RFC 6121 §3.1.6).
    await s.until(() => s.elements.find((e) => e.name === 'presence' && fromBob(e) && e.attrs.type === undefined));
    s.write('</stream:stream>');
    await s.until(() => s.closed);
  }

  const hooks = ts.server.core.hosts.get('localhost')!.hooks;
  /**
   * Resolves once a stanza matching `match` went through the outbound pipeline ('stanza/out')
   * of the session of `jid`: held when a hook took it (client state indication holds it; it
   * never reached the connection), not held when it went on to the connection. Registered when
   * called: call it before what sends the stanza.
   */
  const outbound = (jid: string, match: (el: Element) => boolean): Promise<{ held: boolean }> =>
    new Promise((resolve) => {
      let watched: { session: unknown; stanza: Element } | undefined;
      let passed = false;
      // Last in the chain: reached only when no hook took the stanza.
      const undoLast = hooks.on(
        'stanza/out',
        ({ session, stanza }) => void (watched?.session === session && watched.stanza === stanza && (passed = true)),
        Number.NEGATIVE_INFINITY,
        'test',
      );
      const undoFirst = hooks.on(
        'stanza/out',
        ({ session, stanza }) => {
          if (watched || session.jid?.toString() !== jid || !match(stanza)) return;
          watched = { session, stanza };
          // The chain is synchronous: by the next turn it has run to its end, or was stopped.
          setImmediate(() => {
            undoFirst();
            undoLast();
            resolve({ held: !passed });
          });
        },
        Number.POSITIVE_INFINITY,
        'test',
      );
    });

  let show = 0;
  /**
   * bob changes his presence; resolves once it went through the outbound pipeline of `jid`
   * (bob's stanzas are routed concurrently: this keeps them in the order sent), with the <show/>
   * sent and whether it was held there.
   */
  const bobShows = async (jid: string, value?: string) => {
    const shown = value ?? ['away', 'xa', 'dnd', 'chat'][show++ % 4]!;
    const out = outbound(jid, (el) => el.name === 'presence' && fromBob(el) && el.getChildText('show') === shown);
    await bob.send(xml('presence', {}, xml('show', {}, shown)));
    return { shown, ...(await out) };
  };
  let n = 0;
  /** bob sends a chat state to `to`; resolves as bobShows does, with its description. */
  const chatState = async (to: string, state = 'composing') => {
    const id = `cs${++n}`;
    const out = outbound(to, (el) => el.name === 'message' && el.attrs.id === id);
    await bob.send(xml('message', { to, type: 'chat', id }, xml(state, { xmlns: CHATSTATES })));
    return { state: `state:${state}:${id}`, ...(await out) };
  };
  const say = (to: string, body: string) => bob.send(xml('message', { to, type: 'chat', id: `b${++n}` }, xml('body', {}, body)));

  const opened: RawStream[] = [];
  /** An available alice session on a raw stream whose initial traffic (bob's presence) is over. */
  const alice = async (resource: string) => {
    const { s } = await rawLogin(ts.port, 'alice', resource);
    opened.push(s);
    t.teardown(() => s.close());
    s.write('<presence/>');
    await s.until(() => stanzas(s).some((e) => e.name === 'presence' && fromBob(e)));
    await rawRoundTrip(s); // the initial traffic is in (the session is still active)
    s.elements.length = 0;
    return { s, jid: `alice@localhost/${resource}` };
  };
  let marks = 0;
  /**
   * <inactive/>, then a headline to bob: once bob has it, the server handled the nonza before
   * it (a session's input is handled in order). No ping: its answer would be urgent. With
   * stream management on (`sm`), an <r/> instead, which adds no stanza to count; the server's
   * <a/> is taken off the list.
   */
  const inactive = async (s: RawStream, sm = false) => {
    s.write(`<inactive xmlns='${CSI}'/>`);
    if (sm) {
      s.write(`<r xmlns='${SM}'/>`);
      await s.element('a');
      return;
    }
    const id = `mark${++marks}`;
    s.write(`<message to='bob@localhost/desk' type='headline' id='${id}'/>`);
    await bob.next((el) => el.name === 'message' && el.attrs.id === id);
  };

  t.test('offered after authentication', async (t) => {
    const s = await RawStream.open(ts.port);
    t.teardown(() => s.close());
    s.header();
    const before = await s.element('stream:features');
    t.notOk(before.getChild('csi', CSI), 'not before TLS and authentication');
    await s.startTls();
    s.header();
    t.notOk((await s.element('stream:features')).getChild('csi', CSI), 'not before authentication');
    s.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0alice\0${PASSWORD}`).toString('base64')}</auth>`);
    await s.element('success');
    s.restart();
    s.header();
    t.ok((await s.element('stream:features')).getChild('csi', CSI), "<csi xmlns='urn:xmpp:csi:0'/> after authentication");
  });

  t.test('while inactive a contact’s presence waits, and arrives (the latest only) on <active/>', async (t) => {
    const { s, jid } = await alice('held');
    await inactive(s);
    const away = await bobShows(jid, 'away');
    const state = await chatState(jid);
    const dnd = await bobShows(jid, 'dnd');
    t.ok(away.held && state.held && dnd.held, 'all three held');
    t.same(seq(s), [], 'nothing reaches the inactive client');
    s.write(`<active xmlns='${CSI}'/>`);
    await s.until(() => seq(s).length >= 2);
    await rawRoundTrip(s); // active: anything more released would be in before the answer
    t.same(seq(s), [state.state, 'presence:dnd'], 'away was replaced by dnd (placed after the chat state that came between)');
    s.elements.length = 0;
    await bobShows(jid, 'xa');
    await s.until(() => seq(s).length >= 1);
    t.same(seq(s), ['presence:xa'], 'active again: presence goes out at once');
  });

  t.test('a message with a body goes at once, after what was held, in order', async (t) => {
    const { s, jid } = await alice('urgent');
    await inactive(s);
    const { shown } = await bobShows(jid);
    const { state } = await chatState(jid);
    await say(jid, 'hello');
    await s.until(() => seq(s).includes('body:hello'));
    // The ping's answer is urgent too: it would release anything still held before it.
    await rawRoundTrip(s);
    t.same(seq(s), [`presence:${shown}`, state, 'body:hello'], 'held stanzas first, then the message, in order');

    // Still inactive: the next presence update waits again; an IQ releases it.
    s.elements.length = 0;
    const again = await bobShows(jid);
    t.ok(again.held, 'still inactive after the flush: held');
    t.same(seq(s), [], 'nothing reached the client');
    await bob.send(xml('iq', { type: 'get', to: jid, id: 'ask-1' }, xml('query', { xmlns: 'jabber:iq:version' })));
    await s.until(() => seq(s).includes('iq:ask-1'));
    t.same(seq(s), [`presence:${again.shown}`, 'iq:ask-1'], 'an IQ is urgent too, and goes after the held presence');
    s.write(`<active xmlns='${CSI}'/>`);
  });

  t.test(`the buffer holds ${MAX_BUFFER} stanzas; one more sends everything, in order`, async (t) => {
    const { s, jid } = await alice('full');
    await inactive(s);
    const sent: { state: string; held: boolean }[] = [];
    for (let i = 0; i < MAX_BUFFER; i++) sent.push(await chatState(jid, i % 2 ? 'paused' : 'composing'));
    t.ok(
      sent.every((c) => c.held),
      `${MAX_BUFFER} held`,
    );
    t.same(seq(s), [], 'none reached the client');
    const last = await chatState(jid, 'active');
    t.notOk(last.held, 'one more is not held');
    sent.push(last);
    await s.until(() => seq(s).length >= MAX_BUFFER + 1);
    await rawRoundTrip(s); // its answer is urgent: it would release anything still held before it
    t.same(
      seq(s),
      sent.map((c) => c.state),
      'all of them, in order, once',
    );
  });

  t.test('stream management counts held stanzas when they are sent, once', async (t) => {
    const { s, jid } = await alice('counted');
    s.write(`<enable xmlns='${SM}'/>`);
    const enabled = await s.until(() => s.elements.find((e) => e.name === 'enabled'));
    await inactive(s, true);
    const held = [await bobShows(jid), await chatState(jid), await chatState(jid, 'paused')];
    t.ok(
      held.every((h) => h.held),
      'all three held (a hook above stream management took them)',
    );
    const after = () => s.elements.slice(s.elements.indexOf(enabled) + 1);
    t.same(
      after().filter((e) => STANZA.has(e.name)),
      [],
      'nothing sent while held',
    );
    t.notOk(
      after().some((e) => e.name === 'r'),
      'and no ack requested for it: stream management has not seen it',
    );

    s.write(`<active xmlns='${CSI}'/>`);
    await s.until(() => after().filter((e) => STANZA.has(e.name)).length >= 3);
    // A round trip that adds no stanza to count: the server's <a/> to an <r/>, after the flush.
    s.write(`<r xmlns='${SM}'/>`);
    await s.element('a');
    const received = after().filter((e) => STANZA.has(e.name)).length;
    t.equal(received, 3, 'three stanzas arrived');
    t.ok(
      after().some((e) => e.name === 'r'),
      'the server asked for acks as they went out (request_ack_every = 1)',
    );

    // The client acknowledges what it got: accepted. One more than it got is refused, so the
    // server counted exactly the stanzas it wrote: none twice, none while held.
    s.write(`<a xmlns='${SM}' h='${received}'/>`);
    s.write(`<r xmlns='${SM}'/>`);
    const a = await s.until(() => after().find((e) => e.name === 'a'));
    t.equal(a.attrs.h, '0', 'the stream is fine after h = 3 (and alice sent no stanza since enabling)');
    s.write(`<a xmlns='${SM}' h='${received + 1}'/>`);
    t.equal(await s.streamError(), 'undefined-condition', 'h = 4 acknowledges more than was sent');
  });

  t.test('resumption: what was held goes into the resumed stream, which is active again', async (t) => {
    const { s, jid } = await alice('resumed');
    s.write(`<enable xmlns='${SM}' resume='true'/>`);
    const enabled = await s.element('enabled');
    s.elements.length = 0;
    await inactive(s);
    const { shown, held } = await bobShows(jid);
    t.ok(held, 'held');
    t.same(seq(s), [], 'not on the connection');
    const interrupted = nextHook(ts, 'session/interrupted');
    s.close(); // the connection drops
    await interrupted; // the server saw it, and keeps the session

    const r = await rawAuthenticated(ts.port, 'alice');
    t.teardown(() => r.close());
    r.write(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='0'/>`);
    await r.element('resumed');
    await r.until(() => seq(r).includes(`presence:${shown}`));
    t.pass('the held presence is delivered after resumption');
    r.elements.length = 0;
    const next = await bobShows(jid);
    t.notOk(next.held, 'not held');
    await r.until(() => seq(r).includes(`presence:${next.shown}`), 2000);
    t.pass('the resumed stream is active (XEP-0352 §5.2): the next update comes at once');
    r.write('</stream:stream>');
  });

  t.test('a session that ends with messages held: they go to offline storage, not nowhere', async (t) => {
    // No other resource of alice's is available to take them.
    const ended = sessionsEnded(ts, 'alice');
    for (const s of opened) s.close();
    await ended;
    const { s, jid } = await alice('gone');
    await inactive(s);
    const receipt = outbound(jid, (el) => el.attrs.id === 'receipt-1');
    await bob.send(xml('message', { to: jid, id: 'receipt-1' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'm1' })));
    t.ok((await receipt).held, 'a receipt is held');
    t.ok((await bobShows(jid)).held, 'and a presence update');
    t.same(seq(s), [], 'nothing on the connection');
    const gone = sessionsEnded(ts, 'alice'); // its teardown re-routes what was held
    s.write('</stream:stream>');
    await s.until(() => s.closed);
    await gone;
    const { s: later } = await rawLogin(ts.port, 'alice', 'later');
    t.teardown(() => later.close());
    later.write('<presence/>');
    const msg = await later.until(() => stanzas(later).find((e) => e.name === 'message' && e.attrs.id === 'receipt-1'));
    t.ok(msg.getChild('received', 'urn:xmpp:receipts'), 'the held receipt, from offline storage');
    t.ok(msg.getChild('delay', 'urn:xmpp:delay'), 'with the time it arrived');
    later.write('</stream:stream>');
  });

  t.test('Bind 2: inactive from the start (XEP-0386 inline)', async (t) => {
    const { s, features } = await RawStream.started(ts.tlsPort, true);
    t.teardown(() => s.close());
    t.ok(bind2Inline(features).includes(CSI), 'offered inline');
    const jid = await sasl2Bind(s, 'alice', 'pocket', `<inactive xmlns='${CSI}'/>`);
    const probed = outbound(jid, (el) => el.name === 'presence' && fromBob(el));
    s.write('<presence/>');
    t.ok((await probed).held, "bob's presence (the answer to the probe) is held");
    t.same(seq(s), [], 'not on the connection');
    await say(jid, 'wake up');
    await s.until(() => seq(s).includes('body:wake up'));
    await rawRoundTrip(s); // its answer is urgent: it would release anything still held before it
    const got = seq(s);
    t.equal(got.at(-1), 'body:wake up', 'released by a message, which comes last');
    t.ok(got.length === 2 && got[0]!.startsWith('presence:'), "bob's held presence before it");
  });
});
