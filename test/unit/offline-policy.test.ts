// Which messages offline storage keeps: XEP-0160 §3 (and the RFC 6121 rules it quotes), the
// XEP-0334 hints and XEP-0085 chat states.
import t from 'tap';
import { xml, type Element } from '@xmpp/xml';
import { decide, isStandaloneChatState } from '../../modules/offline/policy.js';

const HINTS = 'urn:xmpp:hints';
const CHATSTATES = 'http://jabber.org/protocol/chatstates';

const message = (attrs: Record<string, string>, ...children: Element[]) => xml('message', { to: 'bob@localhost', from: 'alice@localhost/a', ...attrs }, ...children);
const body = (text = 'hello') => xml('body', {}, text);
const composing = () => xml('composing', { xmlns: CHATSTATES });
const hint = (name: string) => xml(name, { xmlns: HINTS });

t.test('XEP-0160 §3: message types', async (t) => {
  t.equal(decide(message({ type: 'normal' }, body())), 'store', 'normal with a body: stored');
  t.equal(decide(message({}, body())), 'store', 'no type is normal (RFC 6121 §5.2.2): stored');
  t.equal(decide(message({ type: 'chat' }, body())), 'store', 'chat with a body: stored');
  t.equal(decide(message({ type: 'headline' }, body())), 'drop', 'headline: not stored, silently');
  t.equal(decide(message({ type: 'error' }, xml('error', { type: 'cancel' }))), 'drop', 'error: not stored, silently');
  t.equal(decide(message({ type: 'groupchat' }, body())), 'pass', "groupchat: not stored, left to the router's bounce");
});

t.test('XEP-0160 §3: chat-state-only messages are not stored', async (t) => {
  t.equal(decide(message({ type: 'chat' }, composing())), 'drop', 'a chat state alone');
  t.equal(decide(message({ type: 'normal' }, composing())), 'drop', 'also with type normal');
  t.equal(decide(message({ type: 'chat' }, composing(), xml('thread', {}, 'th1'))), 'drop', 'a thread does not make it content');
  t.equal(decide(message({ type: 'chat' }, xml('active', { xmlns: CHATSTATES }), body())), 'store', 'a chat state with a body is a message');
  t.equal(decide(message({ type: 'chat' }, xml('gone', { xmlns: CHATSTATES }), xml('received', { xmlns: 'urn:xmpp:receipts', id: 'x' }))), 'store', 'with a receipt: kept');
});

t.test('content without a body is stored (receipts, markers, encrypted payloads)', async (t) => {
  t.equal(decide(message({ type: 'chat' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'm1' }))), 'store', 'a delivery receipt (XEP-0184)');
  t.equal(decide(message({ type: 'chat' }, xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'm1' }))), 'store', 'a chat marker (XEP-0333)');
  t.equal(decide(message({ type: 'chat' }, xml('encrypted', { xmlns: 'eu.siacs.conversations.axolotl' }))), 'store', 'an OMEMO message without a fallback body');
});

t.test('XEP-0334 hints', async (t) => {
  t.equal(decide(message({ type: 'chat' }, body(), hint('no-store'))), 'refuse', '<no-store/>: not stored, the sender is told');
  t.equal(decide(message({ type: 'chat' }, composing(), hint('no-store'))), 'drop', '<no-store/> on a chat state: dropped silently');
  t.equal(decide(message({ type: 'chat' }, body(), hint('no-permanent-store'))), 'store', '<no-permanent-store/> allows temporary storage');
  t.equal(decide(message({ type: 'chat' }, composing(), hint('store'))), 'store', '<store/> keeps what would be dropped');
  t.equal(decide(message({ type: 'headline' }, body(), hint('store'))), 'drop', '<store/> does not override the type rules');
  t.equal(decide(message({ type: 'chat' }, body(), hint('store'), hint('no-store'))), 'refuse', '<no-store/> wins over <store/>');
  t.equal(decide(message({ type: 'chat' }, body(), xml('no-store', { xmlns: 'urn:example' }))), 'store', 'only in the hints namespace');
});

t.test('isStandaloneChatState', async (t) => {
  t.ok(isStandaloneChatState(message({ type: 'chat' }, composing(), hint('no-store'), xml('origin-id', { xmlns: 'urn:xmpp:sid:0', id: 'o1' }))), 'hints and ids are not content');
  t.ok(isStandaloneChatState(message({ type: 'chat' }, composing(), xml('delay', { xmlns: 'urn:xmpp:delay', stamp: '2020-01-01T00:00:00Z' }))), 'a delay is not content');
  t.notOk(isStandaloneChatState(message({ type: 'chat' }, body())), 'a body without a chat state');
  t.notOk(isStandaloneChatState(message({ type: 'chat' })), 'an empty message has no chat state');
  t.notOk(isStandaloneChatState(message({ type: 'chat' }, composing(), xml('subject', {}, 'topic'))), 'a subject is content');
  t.notOk(isStandaloneChatState(message({ type: 'chat' }, composing(), xml('thread', { xmlns: 'urn:example' }))), 'a thread in another namespace is a payload');
});
