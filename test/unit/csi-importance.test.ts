// What reaches an inactive client at once (XEP-0352 §3.2 suggests holding presence updates and
// chat states; whatever a person would want to see now goes through).
import t from 'tap';
import { xml, type Element } from '@xmpp/xml';
import { importance, parsePayloads } from '../../modules/csi/importance.js';

const urgent = importance();
const message = (attrs: Record<string, string>, ...children: Element[]) => xml('message', { from: 'bob@localhost/b', ...attrs }, ...children);
const body = () => xml('body', {}, 'hello');

t.test('§3.2: presence updates wait; subscriptions and errors do not', async (t) => {
  t.notOk(urgent(xml('presence', { from: 'bob@localhost/b' })), 'available');
  t.notOk(urgent(xml('presence', { from: 'bob@localhost/b' }, xml('show', {}, 'away'))), 'away');
  t.notOk(urgent(xml('presence', { from: 'bob@localhost/b', type: 'unavailable' })), 'unavailable');
  for (const type of ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'error']) t.ok(urgent(xml('presence', { from: 'bob@localhost', type })), type);
});

t.test('§3.2: chat states alone wait, messages for a person do not', async (t) => {
  t.notOk(urgent(message({ type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }))), 'a chat state alone');
  t.notOk(urgent(message({ type: 'chat' }, xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'x' }))), 'a chat marker');
  t.notOk(urgent(message({ type: 'headline' }, xml('event', { xmlns: 'http://jabber.org/protocol/pubsub#event' }))), 'a PubSub event');
  t.ok(urgent(message({ type: 'chat' }, body())), 'a body');
  t.ok(urgent(message({ type: 'chat' }, xml('body', { xmlns: 'jabber:client' }, 'hi'))), 'a body in jabber:client');
  t.notOk(urgent(message({ type: 'chat' }, xml('body', { xmlns: 'urn:example' }, 'hi'))), 'a "body" in another namespace is not text for a person');
  t.ok(urgent(message({ type: 'groupchat', from: 'room@conference.localhost' }, xml('subject', {}, 'news'))), "a room's new subject");
  t.ok(urgent(message({ type: 'error' })), 'an error about something sent');
});

t.test('encrypted content, calls and invitations are urgent', async (t) => {
  t.ok(urgent(message({ type: 'chat' }, xml('encrypted', { xmlns: 'eu.siacs.conversations.axolotl' }))), 'OMEMO (legacy)');
  t.ok(urgent(message({ type: 'chat' }, xml('encrypted', { xmlns: 'urn:xmpp:omemo:2' }))), 'OMEMO 2');
  t.ok(urgent(message({ type: 'chat' }, xml('propose', { xmlns: 'urn:xmpp:jingle-message:0', id: 'c' }))), 'a call proposal (XEP-0353)');
  t.ok(urgent(message({}, xml('x', { xmlns: 'jabber:x:conference', jid: 'room@conference.localhost' }))), 'a direct invitation (XEP-0249)');
  t.ok(urgent(message({}, xml('x', { xmlns: 'http://jabber.org/protocol/muc#user' }, xml('invite', { from: 'carol@localhost' })))), 'a mediated invitation');
  t.notOk(urgent(message({}, xml('x', { xmlns: 'http://jabber.org/protocol/muc#user' }))), 'muc#user without an invitation');
});

t.test('what the client waits for: IQs and MAM results', async (t) => {
  t.ok(urgent(xml('iq', { type: 'get', id: 'p' }, xml('ping', { xmlns: 'urn:xmpp:ping' }))), 'an IQ request');
  t.ok(urgent(xml('iq', { type: 'result', id: 'r' })), 'an IQ result');
  t.ok(urgent(message({}, xml('result', { xmlns: 'urn:xmpp:mam:2', queryid: 'q' }))), 'a MAM result (XEP-0313)');
});

t.test('carbons (XEP-0280): a sent copy is urgent, a received copy as urgent as its message', async (t) => {
  const carbon = (wrapper: string, inner: Element) =>
    message({ from: 'alice@localhost' }, xml(wrapper, { xmlns: 'urn:xmpp:carbons:2' }, xml('forwarded', { xmlns: 'urn:xmpp:forward:0' }, inner)));
  const state = message({ type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }));
  t.ok(urgent(carbon('sent', state)), 'sent: the user is active elsewhere');
  t.ok(urgent(carbon('received', message({ type: 'chat' }, body()))), 'received: a message with a body');
  t.notOk(urgent(carbon('received', state)), 'received: a chat state alone');
});

t.test('configured important payloads', async (t) => {
  const parsed = parsePayloads(['urn:example:a', '{urn:example:b}', '{urn:example:c}ring']);
  t.same([...parsed.namespaces].sort(), ['urn:example:a', 'urn:example:b'], 'a bare namespace and "{namespace}" stand for the whole namespace');
  t.same([...parsed.elements], ['{urn:example:c}ring'], '"{namespace}element" for one element');
  const configured = importance(['urn:example:a', '{urn:example:c}ring']);
  t.ok(configured(message({}, xml('anything', { xmlns: 'urn:example:a' }))), 'any element of a configured namespace');
  t.ok(configured(message({}, xml('ring', { xmlns: 'urn:example:c' }))), 'the configured element');
  t.notOk(configured(message({}, xml('other', { xmlns: 'urn:example:c' }))), 'not another element of its namespace');
  t.notOk(urgent(message({}, xml('anything', { xmlns: 'urn:example:a' }))), 'nothing configured: not urgent');
});
