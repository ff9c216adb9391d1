// Which messages are copied to a user's other resources: XEP-0280 §6 (the recommended rules,
// urn:xmpp:carbons:rules:0) and the opt-outs of §9 and XEP-0334.
import t from 'tap';
import { xml, type Element } from '@xmpp/xml';
import { eligible, isCarbon, optedOut } from '../../modules/carbons/rules.js';
import { parseJid } from '../../src/jid.js';

const MUC_USER = 'http://jabber.org/protocol/muc#user';
const contact = parseJid('bob@example.org');
const occupant = parseJid('room@conference.example.org/nick');

const message = (attrs: Record<string, string>, ...children: Element[]) => xml('message', { id: 'm1', ...attrs }, ...children);
const body = () => xml('body', {}, 'hello');

t.test('§6.1: chat, and normal messages with a body, are copied both ways', async (t) => {
  for (const direction of ['sent', 'received'] as const) {
    t.ok(eligible(message({ type: 'chat' }, body()), direction, contact), `${direction}: chat`);
    t.ok(eligible(message({ type: 'chat' }), direction, contact), `${direction}: chat without a body`);
    t.ok(eligible(message({ type: 'normal' }, body()), direction, contact), `${direction}: normal with a body`);
    t.ok(eligible(message({}, body()), direction, contact), `${direction}: no type is normal`);
  }
  t.notOk(eligible(message({ type: 'normal' }), 'received', contact), 'normal without a body or IM payload: not copied');
  t.notOk(eligible(message({ type: 'normal' }, xml('event', { xmlns: 'http://jabber.org/protocol/pubsub#event' })), 'received', contact), 'a PubSub event: not copied');
  t.notOk(eligible(message({ type: 'headline' }, body()), 'received', contact), 'headline without IM payloads: not copied');
});

t.test('§6.1: IM payloads (receipts, chat states, markers) are copied in normal messages', async (t) => {
  t.ok(eligible(message({ type: 'normal' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'x' })), 'received', contact), 'a receipt (XEP-0184)');
  t.ok(eligible(message({ type: 'normal' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })), 'sent', contact), 'a chat state (XEP-0085)');
  t.ok(eligible(message({ type: 'normal' }, xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'x' })), 'sent', contact), 'a marker (XEP-0333)');
  for (const name of ['propose', 'retract', 'accept', 'reject', 'proceed']) {
    t.ok(eligible(message({}, xml(name, { xmlns: 'urn:xmpp:jingle-message:0', id: 'call' })), 'sent', contact), `a Jingle message initiation <${name}/> (XEP-0353)`);
  }
});

t.test('§6.1: groupchat and errors are not copied', async (t) => {
  t.notOk(eligible(message({ type: 'groupchat' }, body()), 'received', parseJid('room@conference.example.org/nick')), 'groupchat');
  t.notOk(eligible(message({ type: 'error' }, xml('error', { type: 'cancel' })), 'received', contact), 'error');
  t.notOk(eligible(xml('presence'), 'received', contact), 'not a message');
});

t.test('§6.1: MUC private messages and invitations', async (t) => {
  const pm = () => message({ type: 'chat' }, body(), xml('x', { xmlns: MUC_USER }));
  t.ok(eligible(pm(), 'sent', occupant), 'a private message sent to an occupant is copied');
  t.notOk(eligible(pm(), 'received', occupant), 'one received from an occupant is not (the service sends it to every joined client)');
  t.ok(
    eligible(message({}, xml('x', { xmlns: MUC_USER }, xml('invite', { from: 'carol@example.org' }))), 'received', parseJid('room@conference.example.org')),
    'a mediated invitation',
  );
  t.ok(eligible(message({}, xml('x', { xmlns: 'jabber:x:conference', jid: 'room@conference.example.org' })), 'received', contact), 'a direct invitation (XEP-0249)');
});

t.test('§9 and XEP-0334: the sender opts out', async (t) => {
  const priv = message({ type: 'chat' }, body(), xml('private', { xmlns: 'urn:xmpp:carbons:2' }), xml('no-copy', { xmlns: 'urn:xmpp:hints' }));
  t.ok(optedOut(priv));
  t.notOk(eligible(priv, 'sent', contact), '<private/> with <no-copy/>: not copied');
  t.notOk(eligible(message({ type: 'chat' }, body(), xml('private', { xmlns: 'urn:xmpp:carbons:2' })), 'received', contact), '<private/> alone');
  t.notOk(eligible(message({ type: 'chat' }, body(), xml('no-copy', { xmlns: 'urn:xmpp:hints' })), 'received', contact), '<no-copy/> alone');
  t.notOk(optedOut(message({ type: 'chat' }, body(), xml('private', { xmlns: 'urn:xmpp:carbons:1' }))), 'only in the carbons:2 namespace');
});

t.test('a carbon is never copied again', async (t) => {
  const forwarded = xml('forwarded', { xmlns: 'urn:xmpp:forward:0' }, message({ type: 'chat', from: 'bob@example.org/x' }, body()));
  for (const wrapper of ['sent', 'received']) {
    const carbon = message({ type: 'chat' }, xml(wrapper, { xmlns: 'urn:xmpp:carbons:2' }, forwarded));
    t.ok(isCarbon(carbon), `<${wrapper}/> is a carbon`);
    t.notOk(eligible(carbon, 'received', contact), `<${wrapper}/>: not copied`);
  }
  t.notOk(isCarbon(message({ type: 'chat' }, body())), 'a plain message is not');
});
