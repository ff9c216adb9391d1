// IQs to an occupant's JID (room@service/nick): XEP-0410 self-ping answered by the room, and
// other IQs forwarded between occupants (XEP-0045 §7.5) without revealing real JIDs, the reply
// mapped back to the one who asked.
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import { MUC } from './ns.js';
import type { Room } from './room.js';

/** An IQ to room@service/nick: XEP-0410 self-ping, otherwise forwarded to that occupant. */
export async function occupantIq(room: Room, stanza: Element, from: Jid, to: Jid): Promise<void> {
  const type = stanza.attrs.type;
  if (type === 'result' || type === 'error') return forwardedReply(room, stanza, from);
  const occ = room.occupantOf(from);
  const payload = stanza.children.find((c): c is Element => typeof c !== 'string');
  if (!occ) throw new StanzaError('not-acceptable', 'you are not in this room', 'cancel');
  const target = room.occupants.get(to.resource);
  if (!target) throw new StanzaError('item-not-found', 'no occupant has that nickname');
  if (target === occ && payload?.name === 'ping' && payload.attrs.xmlns === MUC.PING) {
    // XEP-0410 §3.2: the room answers for the occupant itself.
    room.service.sender.send(xml('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: stanza.attrs.from }));
    return;
  }
  const id = randomBytes(9).toString('base64url');
  // vCard requests go to the user's account, which the server answers (XEP-0045 §7.5: avatars
  // of occupants); anything else to the occupant's client.
  const isVcard = type === 'get' && payload?.name === 'vCard' && payload.attrs.xmlns === 'vcard-temp';
  const real = isVcard ? target.bare.toString() : target.realJid;
  const timer = setTimeout(() => room.forwarded.delete(id), 60_000);
  timer.unref();
  room.forwarded.set(id, { from: from.toString(), id: stanza.attrs.id ?? '', target: real, occupant: target.jid.toString(), timer });
  const copy = xml('iq', { type, id, from: occ.jid.toString(), to: real });
  copy.children = [...stanza.children];
  room.service.sender.send(copy);
}

/** The answer to a forwarded IQ goes back to the one who asked, from the occupant JID. */
function forwardedReply(room: Room, stanza: Element, from: Jid): void {
  const id = stanza.attrs.id ?? '';
  const entry = room.forwarded.get(id);
  if (!entry || entry.target !== from.toString()) return;
  room.forwarded.delete(id);
  clearTimeout(entry.timer);
  const reply = xml('iq', { type: stanza.attrs.type, id: entry.id, from: entry.occupant, to: entry.from });
  reply.children = [...stanza.children];
  room.service.sender.send(reply);
}
