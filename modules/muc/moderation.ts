// XEP-0425 (0.3) moderated message retraction: a moderator asks the room to retract a message
// by its stanza id; the room drops it from its history, tells the archive, and broadcasts an
// XEP-0424 retraction saying who moderated it.
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import { Prepared } from './fanout.js';
import { MUC } from './ns.js';
import type { Room } from './room.js';

export interface RetractHook {
  /** Whether the archive knows the message (it may retract what the history no longer holds). */
  retract?(room: Jid, stanzaId: string, by: string, reason: string | undefined): void | Promise<void>;
}

export async function moderate(room: Room, from: Jid, moderateEl: Element, archive: RetractHook | undefined): Promise<void> {
  const occ = room.occupantOf(from);
  if (!occ || occ.role !== 'moderator') throw new StanzaError('forbidden', "only moderators may retract other occupants' messages");
  if (!moderateEl.getChild('retract', MUC.RETRACT)) throw new StanzaError('feature-not-implemented', 'only retraction is supported');
  const id = moderateEl.attrs.id;
  if (!id) throw new StanzaError('bad-request', 'which message? (the id attribute: its stanza id)');
  const removed = room.history.remove(id);
  if (removed === 0 && !archive?.retract) throw new StanzaError('item-not-found', 'no such message in this room');
  if (removed > 0 && room.config.persistent) await room.service.removeMessage(room, id);
  const reason = moderateEl.getChildText('reason') ?? undefined;
  await archive?.retract?.(room.jid, id, occ.jid.toString(), reason);
  const retraction = xml(
    'message',
    { from: room.str, type: 'groupchat', id: randomBytes(9).toString('base64url') },
    xml(
      'retract',
      { xmlns: MUC.RETRACT, id },
      xml('moderated', { xmlns: MUC.MODERATE, by: occ.jid.toString() }, xml('occupant-id', { xmlns: MUC.OCCUPANT_ID, id: occ.occupantId })),
      reason !== undefined ? xml('reason', {}, reason) : null,
    ),
    xml('fallback', { xmlns: MUC.FALLBACK, for: MUC.RETRACT }),
    xml('body', {}, 'A moderator retracted a message, but your client does not support retractions.'),
  );
  await room.fanOut(new Prepared(retraction), room.jid);
}
