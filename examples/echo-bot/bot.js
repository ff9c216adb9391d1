// An echo bot as an external component (XEP-0114), written with @xmpp/component.
// It answers every chat message sent to any address at its domain (echo@bot.example.org) with
// the same body, and joins a MUC room when invited to one, by the room (XEP-0045 mediated
// invitation) or directly by a user (XEP-0249). See README.md beside it.
//
//   COMPONENT_DOMAIN=bot.example.org COMPONENT_SECRET=... node examples/echo-bot/bot.js
import { component, xml } from '@xmpp/component';

const NS_MUC = 'http://jabber.org/protocol/muc';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_CONFERENCE = 'jabber:x:conference';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';

const domain = process.env.COMPONENT_DOMAIN;
const password = process.env.COMPONENT_SECRET;
if (!domain || !password) {
  console.error('set COMPONENT_DOMAIN (e.g. bot.example.org) and COMPONENT_SECRET (the secret in Starling\'s [components."bot.example.org"])');
  process.exit(2);
}
// The bot's own address (its replies and room presence come from it), and its nickname in rooms.
const botJid = `${process.env.BOT_NAME ?? 'echo'}@${domain}`;
const nick = process.env.BOT_NICK ?? 'echo';

const xmpp = component({ service: process.env.COMPONENT_SERVICE ?? 'xmpp://127.0.0.1:5347', domain, password });

xmpp.on('error', (err) => console.error('error:', err.message));
xmpp.on('offline', () => console.log('offline'));
xmpp.on('online', (address) => console.log(`online as ${address}`));

xmpp.on('stanza', async (stanza) => {
  if (!stanza.is('message') || stanza.attrs.type === 'error') return;
  const room = invitation(stanza);
  if (room) return join(room, stanza.attrs.to);
  const body = stanza.getChildText('body');
  if ((stanza.attrs.type ?? 'normal') !== 'chat' || body === null) return;
  await xmpp.send(xml('message', { type: 'chat', from: stanza.attrs.to, to: stanza.attrs.from, id: stanza.attrs.id }, xml('body', {}, body)));
});

/** The room (and its password) of a mediated (XEP-0045 §7.8.2) or direct (XEP-0249) invitation, if this message is one. */
function invitation(message) {
  const mediated = message.getChild('x', NS_MUC_USER);
  if (mediated?.getChild('invite')) return { jid: message.attrs.from, password: mediated.getChildText('password') };
  const direct = message.getChild('x', NS_CONFERENCE);
  if (direct?.attrs.jid) return { jid: direct.attrs.jid, password: direct.attrs.password };
  return undefined;
}

/** Enters the room as `nick`, from the address that was invited (or the bot's own). */
async function join(room, invited) {
  const from = invited?.includes('@') ? invited : botJid;
  console.log(`invited to ${room.jid}: joining as ${nick}`);
  await xmpp.send(xml('presence', { from, to: `${room.jid}/${nick}` }, xml('x', { xmlns: NS_MUC }, room.password ? xml('password', {}, room.password) : null)));
}

// What the bot is, for clients that ask (XEP-0030).
xmpp.iqCallee.get(NS_DISCO_INFO, 'query', () =>
  xml(
    'query',
    { xmlns: NS_DISCO_INFO },
    xml('identity', { category: 'client', type: 'bot', name: 'Echo bot' }),
    xml('feature', { var: NS_DISCO_INFO }),
    xml('feature', { var: NS_CONFERENCE }),
  ),
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    xmpp.stop().finally(() => process.exit(0));
  });
}

xmpp.start().catch((err) => {
  console.error('could not connect:', err.message);
  process.exit(1);
});
