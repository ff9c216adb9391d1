// The muc#owner IQs (XEP-0045 §10): the configuration form (creating a reserved room, and
// changing the configuration later), accepting the defaults (an instant room), cancelling the
// initial configuration, and destroying the room with an alternate venue.
import type { Element } from '@xmpp/xml';
import { xml } from '@xmpp/xml';
import { tryParseJid, type Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import { adminSet } from './admin.js';
import { MUC } from './ns.js';
import { applyConfigForm, configForm } from './room-config.js';
import type { Room } from './room.js';

function requireOwner(room: Room, from: Jid): void {
  if (room.affiliationOf(from.bare) !== 'owner') throw new StanzaError('forbidden', 'only owners may do this');
}

/** GET: the configuration form (§10.1.3, §10.2). */
export function ownerGet(room: Room, from: Jid, query: Element): Element {
  requireOwner(room, from);
  if (query.children.some((c) => typeof c !== 'string')) throw new StanzaError('bad-request', 'an owner query get is empty');
  return xml('query', { xmlns: MUC.OWNER }, configForm(room.config, room.service.limits, room.str));
}

/** SET: a submitted or cancelled form, or <destroy/>; old clients' owner/admin list items too. */
export async function ownerSet(room: Room, from: Jid, query: Element): Promise<void> {
  requireOwner(room, from);
  const destroy = query.getChild('destroy');
  if (destroy) {
    let alternate: string | undefined;
    if (destroy.attrs.jid !== undefined) {
      const jid = tryParseJid(destroy.attrs.jid);
      if (!jid) throw new StanzaError('jid-malformed', 'the alternate venue is not a JID');
      alternate = jid.toString();
    }
    await room.destroy(alternate, destroy.getChildText('reason') ?? undefined, destroy.getChildText('password') ?? undefined);
    return;
  }
  const x = query.getChild('x', MUC.DATA);
  if (x) {
    if (x.attrs.type === 'cancel') {
      // §10.1.3: cancelling the initial configuration destroys the new room.
      if (room.locked) await room.destroy(undefined, undefined, undefined);
      return;
    }
    if (x.attrs.type !== 'submit') throw new StanzaError('bad-request', 'submit the form (or cancel it)');
    const next = applyConfigForm(room.config, x, room.service.limits);
    await room.applyConfig(next, from);
    return;
  }
  if (query.getChildren('item').length > 0) return adminSet(room, from, query);
  throw new StanzaError('bad-request', 'an owner query set carries a form or <destroy/>');
}
