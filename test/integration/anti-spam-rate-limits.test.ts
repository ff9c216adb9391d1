// Rate limits of the anti_spam module over real sockets: a client session over its message
// burst gets a 'wait' policy-violation for each stanza over it while its other session and
// other users go on; past close_after refusals in a row its stream ends with the stream error
// policy-violation. IQs have their own bucket. A remote domain over its s2s limit gets the
// same bounce, carried back over federation. starling_rate_limited_total counts the refusals.
import t, { type Test } from 'tap';
import type { Element } from '@xmpp/xml';
import { connect, errorCondition, nothingArrived, rawLogin, rawRoundTrip, xml, type RawStream } from '../helpers/clients.js';
import { startTestServer } from '../helpers/harness.js';
import { RawWebSocket, wsLogin } from '../helpers/websocket.js';
import { REDIS_URL, redisReachable, useService } from '../helpers/services.js';
import { FEDERATION_MODULES, connectTo, link, startFederated } from './s2s-helpers.js';

const MODULES = ['sasl', 'ping', 'disco', 'roster', 'presence', 'anti_spam'];
const isBody = (body: string) => (el: Element) => el.name === 'message' && el.attrs.type !== 'error' && el.getChildText('body') === body;

/** The error reply to the stanza with this id on a raw stream. */
const errorFor = (s: RawStream, id: string) => s.until(() => s.elements.find((e) => e.attrs.id === id && e.attrs.type === 'error'));

t.test('a client session over its message burst bounces with policy-violation, then is closed; others go on', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { anti_spam: { messages_per_second: 0.001, burst: 3, close_after: 4 } } });
  for (const u of ['alice', 'bob', 'carol']) await ts.addUser(u);
  const bob = await connect(ts, 'bob');
  const carol = await connect(ts, 'carol');
  const aliceOther = await connect(ts, 'alice', { resource: 'other' });
  t.teardown(() => Promise.all([bob.stop(), carol.stop(), aliceOther.stop()]));
  const { s: flooder } = await rawLogin(ts.port, 'alice', 'flood');
  t.teardown(() => flooder.close());

  const send = (id: string) => flooder.write(`<message to='${bob.jid}' type='chat' id='${id}'><body>${id}</body></message>`);
  for (const id of ['m1', 'm2', 'm3']) send(id);
  for (const id of ['m1', 'm2', 'm3']) await bob.next(isBody(id));
  t.pass('the burst goes through');

  send('m4');
  const bounced = await errorFor(flooder, 'm4');
  t.equal(errorCondition(bounced), 'policy-violation', 'the fourth message bounces with policy-violation');
  t.equal(bounced.getChild('error')!.attrs.type, 'wait', 'of type wait');
  t.ok(await nothingArrived(bob, isBody('m4')), 'and is not delivered');

  await aliceOther.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'from the other session')));
  await bob.next(isBody('from the other session'));
  await carol.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'from carol')));
  await bob.next(isBody('from carol'));
  t.pass("alice's other session and carol are not limited");

  // An error is never answered with an error: over the limit it is dropped.
  flooder.write(`<message to='${bob.jid}' type='error' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
  // m4 and e1 were refused 1 and 2 in a row; m5 and m6 make 3 and 4, m7 goes past close_after.
  for (const id of ['m5', 'm6']) {
    send(id);
    t.equal(errorCondition(await errorFor(flooder, id)), 'policy-violation', `${id} bounces too`);
  }
  t.notOk(
    flooder.elements.some((e) => e.attrs.id === 'e1'),
    'the error stanza over the limit got no error back',
  );
  send('m7');
  t.equal(await flooder.streamError(), 'policy-violation', 'past close_after refusals in a row, the stream ends with policy-violation');
  const port = ts.server.core.http.addresses.find((a) => !a.secure)!.port;
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /^starling_rate_limited_total\{kind="message",scope="c2s"\} 5$/m, 'five refusals on /metrics (the fifth closed the stream)');

  await aliceOther.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, 'still here')));
  await bob.next(isBody('still here'));
  t.pass('the other session of the same account is still up and unlimited');
});

t.test('a WebSocket session is limited the same way', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { anti_spam: { messages_per_second: 0.001, burst: 1, close_after: 1 } } });
  await ts.addUser('alice');
  const web = await RawWebSocket.connect(`ws://127.0.0.1:${ts.server.core.http.addresses.find((a) => !a.secure)!.port}/xmpp-websocket`);
  t.teardown(() => web.cut());
  const jid = await wsLogin(web, 'alice', 'browser');
  const send = (id: string) => web.write(`<message xmlns='jabber:client' to='${jid}' type='chat' id='${id}'><body>${id}</body></message>`);
  send('w1');
  await web.until(() => web.elements.find((e) => e.attrs.id === 'w1' && e.attrs.type === 'chat'));
  send('w2');
  const bounced = await web.until(() => web.elements.find((e) => e.attrs.id === 'w2' && e.attrs.type === 'error'));
  t.equal(errorCondition(bounced), 'policy-violation', 'the second message bounces with policy-violation');
  send('w3');
  t.equal(await web.streamError(), 'policy-violation', 'the second refusal in a row ends the stream');
});

t.test('IQs have their own bucket; a stanza within the limit resets the run', async (t) => {
  const ts = await startTestServer(t, { modules_enabled: MODULES, modules: { anti_spam: { iq_per_second: 0.001, iq_burst: 3, close_after: 1 } } });
  await ts.addUser('alice');
  const { s } = await rawLogin(ts.port, 'alice', 'iq');
  t.teardown(() => s.close());
  // Bind was negotiation, not a routed IQ: three pings fit.
  for (let i = 0; i < 3; i++) await rawRoundTrip(s);
  s.write(`<iq type='get' id='p4' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  t.equal(errorCondition(await errorFor(s, 'p4')), 'policy-violation', 'the fourth IQ bounces');
  s.write(`<message to='alice@localhost/iq' type='chat' id='h1'><body>hi</body></message>`);
  await s.until(() => s.elements.find((e) => e.attrs.id === 'h1'));
  t.pass('messages still go through (their own bucket), and end the run of refusals');
  s.write(`<iq type='get' id='p5' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  t.equal(errorCondition(await errorFor(s, 'p5')), 'policy-violation', 'one refusal in a row again: not closed');
  s.write(`<iq type='get' id='p6' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  t.equal(await s.streamError(), 'policy-violation', 'the second refusal in a row closes it (close_after = 1)');
});

async function s2sLimited(t: Test, liveState: Record<string, unknown> | undefined) {
  const a = await startFederated(t, 'a.localhost');
  const b = await startFederated(
    t,
    'b.localhost',
    {},
    {
      modules_enabled: [...FEDERATION_MODULES, 'anti_spam'],
      modules: { anti_spam: { s2s: { messages_per_second: 0.001, burst: 2 } } },
      ...(liveState ? { live_state: liveState } : {}),
    },
  );
  // Redis keeps a window from an earlier run of this test for its 2000 s.
  await b.server.core.live.counters.reset('anti_spam:message:a.localhost');
  link(a, b);
  await a.user('alice');
  await b.user('bob');
  await b.user('dave');
  const alice = await connectTo(a, 'alice');
  const bob = await connectTo(b, 'bob');
  const dave = await connectTo(b, 'dave');
  t.teardown(() => Promise.all([alice.stop(), bob.stop(), dave.stop()]));

  for (const body of ['r1', 'r2', 'r3']) await alice.send(xml('message', { to: bob.jid, type: 'chat', id: body }, xml('body', {}, body)));
  await bob.next(isBody('r1'));
  await bob.next(isBody('r2'));
  const bounced = await alice.next((el) => el.name === 'message' && el.attrs.id === 'r3' && el.attrs.type === 'error');
  t.equal(errorCondition(bounced), 'policy-violation', 'the third message from a.localhost bounces back to its sender');
  t.equal(bounced.getChild('error')!.attrs.type, 'wait', 'of type wait');
  t.ok(await nothingArrived(bob, isBody('r3')), 'and is not delivered');
  t.equal(b.server.core.counters.get('rate_limited_total', { kind: 'message', scope: 's2s' }), 1, 'counted, scope s2s');

  for (const body of ['l1', 'l2', 'l3']) await dave.send(xml('message', { to: bob.jid, type: 'chat' }, xml('body', {}, body)));
  for (const body of ['l1', 'l2', 'l3']) await bob.next(isBody(body));
  t.pass('local users are not limited by the s2s bucket');
}

t.test('a remote domain over its s2s limit gets policy-violation back over federation', (t) => s2sLimited(t, undefined));

t.test('the same, counted in Redis ([live_state] backend = "redis")', async (t) => {
  if (!(await useService(t, 'Redis', redisReachable, REDIS_URL))) return;
  await s2sLimited(t, { backend: 'redis', redis_url: REDIS_URL });
});
