// Two accounts made contacts (presence subscriptions both ways), for the PEP tests.
import type { Element } from '@xmpp/xml';
import { xml, type TestClient } from '../helpers/clients.js';

const ROSTER = 'jabber:iq:roster';
const pushWith = (jid: string, subscription: string) => (el: Element) =>
  el.name === 'iq' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === jid && el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === subscription;

/** `a` and `b` (clients of two accounts, rosters asked for) subscribe to each other's presence. */
export async function befriend(a: TestClient, b: TestClient): Promise<void> {
  const aBare = a.jid.split('/')[0]!;
  const bBare = b.jid.split('/')[0]!;
  for (const [from, to, fromBare, toBare] of [
    [a, b, aBare, bBare],
    [b, a, bBare, aBare],
  ] as const) {
    await from.send(xml('presence', { to: toBare, type: 'subscribe' }));
    await to.next((el) => el.name === 'presence' && el.attrs.type === 'subscribe' && el.attrs.from === fromBare);
    await to.send(xml('presence', { to: fromBare, type: 'subscribed' }));
    await from.next((el) => el.name === 'presence' && el.attrs.type === 'subscribed' && el.attrs.from === toBare);
  }
  await a.next(pushWith(bBare, 'both'));
  await b.next(pushWith(aBare, 'both'));
}
