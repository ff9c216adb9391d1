// Messages in a room (XEP-0045 §7.4 to all occupants, §8.1 the subject, §7.5 private messages);
// messages of other types to the room itself go to invites.ts, errors from an occupant's client
// take it out of the room.
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import { Prepared } from './fanout.js';
import { checkFlood } from './flood.js';
import { handleRoomMessage } from './invites.js';
import { MUC } from './ns.js';
import { cleanChildren, type Occupant } from './occupants.js';
import { hasVoice } from './permissions.js';
import { removeForError } from './presence.js';
import type { Room } from './room.js';

/** Stanza errors that mean the occupant's client is not there any more. */
const SEVERE_ERRORS = new Set(['gone', 'item-not-found', 'recipient-unavailable', 'redirect', 'remote-server-not-found', 'remote-server-timeout', 'service-unavailable']);

/** A message to the room or to an occupant. Throws StanzaError for the router to bounce. */
export async function message(room: Room, stanza: Element, from: Jid, to: Jid): Promise<void> {
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error') {
    const occ = room.occupantOf(from);
    const condition = stanza.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;
    if (occ && condition && SEVERE_ERRORS.has(condition)) await removeForError(room, occ, from);
    return;
  }
  if (to.resource !== '') return privateMessage(room, stanza, from, to);
  if (type === 'groupchat') return groupchat(room, stanza, from);
  return handleRoomMessage(room, stanza, from);
}

/** §7.4: a message to all occupants; §8.1: a subject change. */
async function groupchat(room: Room, stanza: Element, from: Jid): Promise<void> {
  const occ = room.occupantOf(from);
  if (!occ) throw new StanzaError('not-acceptable', 'only occupants may send messages to the room');
  checkFlood(occ, room.service.flood);
  const subject = stanza.getChild('subject');
  if (subject && !stanza.getChild('body') && !stanza.getChild('thread')) return changeSubject(room, occ, stanza, subject.getText());
  if (!hasVoice(occ.role)) throw new StanzaError('forbidden', 'visitors may not speak in a moderated room');
  const at = Date.now();
  const stanzaId = room.service.stanzaId(room);
  // What only the room may add goes (XEP-0421 §4), and every stanza-id a client wrote: one by
  // the room would be a forgery (XEP-0359 §3.1), one by a recipient's archive too.
  const children = cleanChildren(stanza, (c) => c.name === 'stanza-id' && c.attrs.xmlns === MUC.SID);
  children.push(xml('occupant-id', { xmlns: MUC.OCCUPANT_ID, id: occ.occupantId }));
  children.push(xml('stanza-id', { xmlns: MUC.SID, id: stanzaId, by: room.str }));
  const base = xml('message', { from: occ.jid.toString(), type: 'groupchat', id: stanza.attrs.id, 'xml:lang': stanza.attrs['xml:lang'] });
  base.children = children;
  const prepared = new Prepared(base);
  const broadcast = room.fanOut(prepared, occ.jid);
  // The fan-out serialised it: its size is known without serialising again.
  const kept = room.history.push({ stanza: base, at, chars: prepared.size, stanzaId });
  room.service.broadcasted({
    room: room.jid,
    stanza: base,
    stanzaId,
    nick: occ.nick,
    sender: occ.bare,
    occupantId: occ.occupantId,
    at,
    logging: room.config.logging,
  });
  // A persistent room's history is written while the fan-out goes on.
  await Promise.all([broadcast, kept && room.config.persistent ? room.service.saveMessage(room, kept, prepared.xml) : undefined]);
}

/** §8.1: moderators, and participants where the configuration allows it. */
async function changeSubject(room: Room, occ: Occupant, stanza: Element, text: string): Promise<void> {
  const allowed = occ.role === 'moderator' || (room.config.changeSubject && hasVoice(occ.role));
  if (!allowed) throw new StanzaError('forbidden', 'you may not change the subject');
  room.subject = { text, by: occ.jid.toString() };
  if (room.config.persistent) await room.service.saveState(room);
  const message = xml(
    'message',
    { from: occ.jid.toString(), type: 'groupchat', id: stanza.attrs.id },
    xml('subject', {}, text),
    xml('occupant-id', { xmlns: MUC.OCCUPANT_ID, id: occ.occupantId }),
  );
  await room.fanOut(new Prepared(message), occ.jid);
}

/** §7.5: a private message to one occupant, through the room, as configured (allowpm). */
async function privateMessage(room: Room, stanza: Element, from: Jid, to: Jid): Promise<void> {
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'groupchat') throw new StanzaError('bad-request', 'a groupchat message goes to the room, not to an occupant');
  const occ = room.occupantOf(from);
  if (!occ) throw new StanzaError('not-acceptable', 'only occupants may send private messages');
  const target = room.occupants.get(to.resource);
  if (!target) throw new StanzaError('item-not-found', 'no occupant has that nickname');
  const rule = room.config.allowPm;
  const allowed = rule === 'anyone' || (rule === 'participants' && hasVoice(occ.role)) || (rule === 'moderators' && occ.role === 'moderator');
  if (!allowed) throw new StanzaError('forbidden', 'private messages are not allowed here');
  const children = cleanChildren(stanza);
  children.push(xml('x', { xmlns: MUC.USER }), xml('occupant-id', { xmlns: MUC.OCCUPANT_ID, id: occ.occupantId }));
  // One copy per session, not the serialise-once path: the recipient's own archive stamps a
  // private message (a stanza-id of its own), and that must reach the client.
  const pending: Promise<void>[] = [];
  for (const session of target.sessions.values()) {
    const message = xml('message', { from: occ.jid.toString(), type: stanza.attrs.type, id: stanza.attrs.id, 'xml:lang': stanza.attrs['xml:lang'] });
    message.children = [...children];
    room.service.sender.one(message, session, pending);
  }
  await Promise.all(pending);
}
