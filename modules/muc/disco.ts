// Service discovery (XEP-0045 §6, XEP-0030) of the service and of its rooms: the service's
// identity and public rooms; a room's identity, its features (muc_persistent, muc_membersonly,
// muc_passwordprotected, ...) and the muc#roominfo form with the occupant count; a user's
// reserved nickname (§7.10, node x-roomuser-item).
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import { form } from './forms.js';
import { MUC } from './ns.js';
import type { Room } from './room.js';

const ROOMUSER_NODE = 'x-roomuser-item';

export function serviceInfo(name: string, node: string | undefined): Element {
  if (node !== undefined) throw new StanzaError('item-not-found', `no node ${node}`);
  return xml(
    'query',
    { xmlns: MUC.DISCO_INFO },
    xml('identity', { category: 'conference', type: 'text', name }),
    ...[MUC.BASE, MUC.DISCO_INFO, MUC.DISCO_ITEMS, MUC.UNIQUE, MUC.PING].map((f) => xml('feature', { var: f })),
  );
}

/** The public rooms (§6.3): unlocked, listed in the directory. */
export function serviceItems(rooms: Iterable<Room>, node: string | undefined, elsewhere: { jid: string; name: string }[] = []): Element {
  if (node !== undefined) throw new StanzaError('item-not-found', `no node ${node}`);
  const items: Element[] = [];
  for (const room of rooms) {
    if (room.locked || room.destroyed || !room.config.public) continue;
    items.push(xml('item', { jid: room.str, name: room.config.name || room.jid.local }));
  }
  // Rooms served by other nodes of a cluster (the public persistent ones).
  for (const item of elsewhere) items.push(xml('item', item));
  return xml('query', { xmlns: MUC.DISCO_ITEMS }, ...items);
}

/** A room's features: what it is (§6.4, §15.2.2) and what it does. */
export function roomFeatures(room: Room): string[] {
  const c = room.config;
  return [
    MUC.BASE,
    MUC.DISCO_INFO,
    MUC.DISCO_ITEMS,
    c.public ? 'muc_public' : 'muc_hidden',
    c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.membersOnly ? 'muc_membersonly' : 'muc_open',
    c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    c.passwordProtected ? 'muc_passwordprotected' : 'muc_unsecured',
    c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
    MUC.STABLE_ID,
    MUC.SELF_PING,
    MUC.OCCUPANT_ID,
    MUC.SID,
    MUC.MODERATE,
    MUC.REQUEST,
    ...room.service.extraFeatures(room),
  ];
}

/** The muc#roominfo form (§15.5.4): description, occupants, subject, language, ... */
export function roomInfoForm(room: Room): Element {
  const c = room.config;
  return form('result', MUC.ROOMINFO, [
    { var: 'muc#roomconfig_roomname', type: 'text-single', label: 'Name', values: [c.name] },
    { var: 'muc#roominfo_description', type: 'text-single', label: 'Description', values: [c.description] },
    { var: 'muc#roominfo_occupants', type: 'text-single', label: 'Number of occupants', values: [String(room.occupants.size)] },
    { var: 'muc#roominfo_subject', type: 'text-single', label: 'Subject', values: [room.subject.text] },
    { var: 'muc#roominfo_subjectmod', type: 'boolean', label: 'Occupants may change the subject', values: [c.changeSubject ? '1' : '0'] },
    { var: 'muc#roominfo_lang', type: 'text-single', label: 'Language of discussion', values: [c.language] },
    { var: 'muc#maxhistoryfetch', type: 'text-single', label: 'Messages of history sent on entering', values: [String(c.historyLength)] },
    { var: 'muc#roomconfig_allowinvites', type: 'boolean', label: 'Occupants may invite others', values: [c.allowInvites ? '1' : '0'] },
    { var: 'muc#roomconfig_allowpm', type: 'list-single', label: 'Who may send private messages', values: [c.allowPm] },
  ]);
}

export function roomInfo(room: Room, from: Jid, node: string | undefined): Element {
  if (node === ROOMUSER_NODE) {
    // §7.10: the requester's reserved nickname, if it has one.
    const nick = room.affiliations.get(from.bare.toString())?.nick;
    return xml('query', { xmlns: MUC.DISCO_INFO, node }, nick ? xml('identity', { category: 'conference', type: 'text', name: nick }) : null);
  }
  if (node !== undefined) throw new StanzaError('item-not-found', `no node ${node}`);
  return xml(
    'query',
    { xmlns: MUC.DISCO_INFO },
    xml('identity', { category: 'conference', type: 'text', name: room.config.name || room.jid.local }),
    ...roomFeatures(room).map((f) => xml('feature', { var: f })),
    roomInfoForm(room),
  );
}

/** §6.5: the occupants, to occupants only (nobody else learns who is in the room this way). */
export function roomItems(room: Room, from: Jid, node: string | undefined): Element {
  if (node !== undefined) throw new StanzaError('item-not-found', `no node ${node}`);
  const inRoom = room.occupantOf(from) !== undefined;
  return xml('query', { xmlns: MUC.DISCO_ITEMS }, ...(inRoom ? [...room.occupants.values()].map((o) => xml('item', { jid: o.jid.toString() })) : []));
}
