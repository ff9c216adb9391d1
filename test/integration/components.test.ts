// External components (XEP-0114) over real sockets: the handshake with a good and a bad secret,
// the example echo bot (examples/echo-bot/bot.js, @xmpp/component) answering a user, a spoofed
// 'from' refused, the component away (service-unavailable) and back, a second connection for
// the same domain, disco#items, limits, and the bot joining rooms it is invited to.
import t from 'tap';
import { ControlClient } from '../../src/control/client.js';
import type { StatusResult } from '../../src/control/protocol.js';
import { DOMAIN } from '../helpers/harness.js';
import { errorCondition, nothingArrived, xml } from '../helpers/clients.js';
import { createInstant, iq, MUC_USER, presenceFrom, SERVICE, users } from './muc-helpers.js';
import { BOT, BOT_DOMAIN, componentEvent, componentPort, RawComponent, rawConnected, startBot, startComponentServer } from '../helpers/components.js';

const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const isChatFrom = (from: string, body: string) => (el: import('@xmpp/xml').Element) => el.name === 'message' && el.attrs.from === from && el.getChildText('body') === body;

t.test('the handshake: a good secret is accepted, a bad one and an unknown domain are refused', async (t) => {
  const ts = await startComponentServer(t);
  const bad = await RawComponent.open(componentPort(ts));
  const refused = await bad.handshake('not the secret');
  t.equal(refused.name, 'stream:error', 'a wrong secret ends the stream');
  t.ok(refused.getChild('not-authorized', 'urn:ietf:params:xml:ns:xmpp-streams'), 'with <not-authorized/>');
  t.ok(await bad.gone(), 'and the connection');

  const unknown = await RawComponent.open(componentPort(ts));
  const answer = await unknown.handshake(undefined, `other.${DOMAIN}`);
  t.ok(answer.getChild('host-unknown', 'urn:ietf:params:xml:ns:xmpp-streams'), 'a domain that is not configured gets <host-unknown/>');

  const connected = componentEvent(ts, 'connected');
  const good = await RawComponent.open(componentPort(ts));
  t.equal((await good.handshake()).name, 'handshake', 'the right secret gets an empty <handshake/>');
  t.equal(good.headers[0]!.attrs.from, BOT_DOMAIN, "our header comes from the component's domain");
  await connected;
  const control = (await ControlClient.connect(ts.dataDir))!;
  t.teardown(() => control.close());
  const status = await control.request<StatusResult>({ command: 'status' });
  t.same(status.components, { configured: 1, connected: 1 }, 'starling status counts it');
  good.close();
});

t.test('the echo bot answers a user; down: service-unavailable; back: answers again', async (t) => {
  const ts = await startComponentServer(t);
  const [alice] = await users(t, ts, 'alice');
  let bot = await startBot(t, ts);

  await alice!.send(xml('message', { to: BOT, type: 'chat', id: 'e1' }, xml('body', {}, 'Hello bot ❤ <&>')));
  const reply = await alice!.next(isChatFrom(BOT, 'Hello bot ❤ <&>'));
  t.equal(reply.attrs.type, 'chat', 'the same body comes back as chat, from echo@bot.localhost');
  t.equal(reply.attrs.to, alice!.jid, 'to the full JID that sent it');

  const items = await iq(alice!, 'get', DOMAIN, xml('query', { xmlns: DISCO_ITEMS }));
  t.ok(
    items
      .getChild('query', DISCO_ITEMS)!
      .getChildren('item')
      .some((i) => i.attrs.jid === BOT_DOMAIN && i.attrs.name === 'Echo bot'),
    "the host's disco#items lists the component",
  );
  const info = await iq(alice!, 'get', BOT, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
  t.equal(info.attrs.type, 'result', 'an IQ to a JID at the component reaches it and its answer comes back');

  const gone = componentEvent(ts, 'disconnected');
  await bot.stop();
  await gone;
  await alice!.send(xml('message', { to: BOT, type: 'chat', id: 'e2' }, xml('body', {}, 'anyone?')));
  const bounced = await alice!.next((el) => el.name === 'message' && el.attrs.id === 'e2');
  t.equal(bounced.attrs.type, 'error', 'the message comes back as an error');
  t.equal(errorCondition(bounced), 'service-unavailable', 'a message to the component while it is away bounces with service-unavailable');
  const iqError = await iq(alice!, 'get', BOT_DOMAIN, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
  t.equal(errorCondition(iqError), 'service-unavailable', 'so does an IQ');
  await alice!.send(xml('presence', { to: BOT }));
  t.ok(await nothingArrived(alice!, (el) => el.name === 'presence' && el.attrs.from === BOT), 'presence is dropped, not bounced');

  bot = await startBot(t, ts);
  await alice!.send(xml('message', { to: `${BOT}/res`, type: 'chat' }, xml('body', {}, 'back?')));
  await alice!.next(isChatFrom(`${BOT}/res`, 'back?'));
  t.pass('after a reconnection, the bot gets messages again (to a full JID at its domain too)');
});

t.test('every address at the domain reaches the component; a stanza from outside its domain ends its stream with invalid-from', async (t) => {
  const ts = await startComponentServer(t);
  const [alice] = await users(t, ts, 'alice');
  const c = await rawConnected(ts);
  await alice!.send(xml('presence', { to: `someone@${BOT_DOMAIN}/x` }));
  await alice!.send(xml('message', { to: BOT_DOMAIN, type: 'normal' }, xml('body', {}, 'to the domain')));
  await alice!.send(xml('iq', { to: `someone@${BOT_DOMAIN}`, type: 'get', id: 'q1' }, xml('query', { xmlns: 'jabber:iq:version' })));
  const presence = await c.until(() => c.elements.find((e) => e.name === 'presence'));
  t.same([presence.attrs.from, presence.attrs.to], [alice!.jid, `someone@${BOT_DOMAIN}/x`], 'presence to a full JID at the domain, from the full JID of the user');
  const message = await c.until(() => c.elements.find((e) => e.name === 'message'));
  t.same([message.attrs.to, message.getChildText('body')], [BOT_DOMAIN, 'to the domain'], 'a message to the domain itself');
  const query = await c.until(() => c.elements.find((e) => e.name === 'iq'));
  t.equal(query.attrs.to, `someone@${BOT_DOMAIN}`, 'an IQ to a bare JID at the domain');
  c.write(
    `<iq type='error' id='q1' from='someone@${BOT_DOMAIN}' to='${alice!.jid}'><query xmlns='jabber:iq:version'/><error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
  );
  t.equal(errorCondition(await alice!.next((el) => el.attrs.id === 'q1')), 'feature-not-implemented', "and the component's answer reaches the user");
  c.write(`<message from='someone@${BOT_DOMAIN}/x' to='${alice!.jid}' type='chat'><body>fine</body></message>`);
  await alice!.next(isChatFrom(`someone@${BOT_DOMAIN}/x`, 'fine'));
  t.pass('from a JID at its own domain: delivered');
  const gone = componentEvent(ts, 'disconnected');
  c.write(`<message from='admin@${DOMAIN}' to='${alice!.jid}' type='chat'><body>spoofed</body></message>`);
  t.equal(await c.streamError(), 'invalid-from', 'from another domain: <invalid-from/>');
  await gone;
  t.ok(await nothingArrived(alice!, (el) => el.getChildText('body') === 'spoofed'), 'and the spoofed message is not delivered');
});

t.test('a second connection for the same domain: replaces the first, or is refused', async (t) => {
  const ts = await startComponentServer(t);
  const first = await rawConnected(ts);
  const second = await rawConnected(ts);
  t.equal(await first.streamError(), 'conflict', 'replace = true (default): the older stream gets <conflict/>');
  t.ok(await first.gone(), 'and its connection ends');

  const strict = await startComponentServer(t, { replace: false });
  const holder = await rawConnected(strict);
  const late = await RawComponent.open(componentPort(strict));
  const answer = await late.handshake();
  t.ok(answer.getChild('conflict', 'urn:ietf:params:xml:ns:xmpp-streams'), 'replace = false: the newcomer gets <conflict/>');
  const [alice] = await users(t, strict, 'alice');
  await alice!.send(xml('message', { to: BOT, type: 'chat' }, xml('body', {}, 'to the first')));
  await holder.until(() => holder.elements.find((e) => e.getChildText('body') === 'to the first'));
  t.pass('and the first keeps the domain');
  second.close();
  holder.close();
});

t.test('stanza size is limited as for clients', async (t) => {
  const ts = await startComponentServer(t);
  const c = await rawConnected(ts);
  c.write(`<message from='${BOT}' to='alice@${DOMAIN}'><body>${'x'.repeat(300_000)}</body></message>`);
  t.equal(await c.streamError(), 'policy-violation', 'a stanza over max_stanza_size ends the stream');
});

t.test('the bot joins a room when invited (XEP-0045 mediated and XEP-0249 direct invitations)', async (t) => {
  const ts = await startComponentServer(t);
  const [alice] = await users(t, ts, 'alice');
  await startBot(t, ts);
  const room = `lounge@${SERVICE}`;
  await createInstant(alice!, room, 'alice');
  await alice!.send(xml('message', { to: room }, xml('x', { xmlns: MUC_USER }, xml('invite', { to: BOT }, xml('reason', {}, 'come in')))));
  const joined = await alice!.next(presenceFrom(`${room}/echo`), 10_000);
  t.equal(joined.getChild('x', MUC_USER)?.getChild('item')?.attrs.role, 'participant', 'the mediated invitation: the bot entered the room');

  const other = `den@${SERVICE}`;
  await createInstant(alice!, other, 'alice');
  await alice!.send(xml('message', { to: BOT }, xml('x', { xmlns: 'jabber:x:conference', jid: other })));
  await alice!.next(presenceFrom(`${other}/echo`), 10_000);
  t.pass('the direct invitation: the bot entered that room too');
});
