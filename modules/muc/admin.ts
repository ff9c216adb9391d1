// The muc#admin IQs (XEP-0045 §8 moderators, §9 admins, §10.3-10.8 owners): changing roles
// (kick, voice, moderator) and affiliations (ban, members, admins, owners), and reading the
// lists, each with the permission rules of permissions.ts. A set with several items is checked
// whole before any of it is applied.
import { xml, type Element } from '@xmpp/xml';
import { tryParseJid, type Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import { MUC } from './ns.js';
import type { Occupant } from './occupants.js';
import { checkAffiliationChange, checkListRead, checkRoleChange, checkRoleListRead, isAffiliation, isRole, type Actor, type Affiliation, type Role } from './permissions.js';
import type { Room } from './room.js';

function actorOf(room: Room, from: Jid): { actor: Actor; occupant: Occupant | undefined } {
  const occupant = room.occupantOf(from);
  return { actor: { affiliation: room.affiliationOf(from.bare), role: occupant?.role ?? 'none' }, occupant };
}

function items(query: Element): Element[] {
  return query.getChildren('item');
}

/** An affiliation item's subject: its bare JID (or domain), given by jid or by an occupant's nick. */
function subjectJid(room: Room, item: Element): string {
  if (item.attrs.jid !== undefined) {
    const jid = tryParseJid(item.attrs.jid);
    if (!jid) throw new StanzaError('jid-malformed', `not a JID: ${item.attrs.jid}`);
    return jid.bare.toString();
  }
  if (item.attrs.nick !== undefined) {
    const occ = room.occupants.get(item.attrs.nick);
    if (!occ) throw new StanzaError('item-not-found', `no occupant is called ${item.attrs.nick}`);
    return occ.bare.toString();
  }
  throw new StanzaError('bad-request', 'an affiliation item needs a jid');
}

/** GET: one item naming a role or an affiliation; the list comes back. */
export function adminGet(room: Room, from: Jid, query: Element): Element {
  const [item, ...more] = items(query);
  if (!item || more.length > 0) throw new StanzaError('bad-request', 'ask for one list at a time');
  const { actor, occupant } = actorOf(room, from);
  const { affiliation, role } = item.attrs;
  if (isAffiliation(affiliation) && affiliation !== 'none') {
    checkListRead(actor, affiliation, room.config.memberListRoles);
    const list = [...room.affiliations].filter(([, e]) => e.affiliation === affiliation);
    return xml('query', { xmlns: MUC.ADMIN }, ...list.map(([jid, e]) => xml('item', { affiliation, jid, nick: e.nick }, e.reason ? xml('reason', {}, e.reason) : null)));
  }
  if (isRole(role) && role !== 'none') {
    checkRoleListRead(actor, role);
    const seeJids = occupant ? room.seesRealJids(occupant) : actor.affiliation === 'owner' || actor.affiliation === 'admin';
    const list = [...room.occupants.values()].filter((o) => o.role === role);
    return xml(
      'query',
      { xmlns: MUC.ADMIN },
      ...list.map((o) => xml('item', { role, nick: o.nick, affiliation: room.affiliationOf(o.bare), jid: seeJids ? o.realJid : undefined })),
    );
  }
  throw new StanzaError('bad-request', 'the item names no list (affiliation or role)');
}

interface RoleChange {
  kind: 'role';
  target: Occupant;
  role: Role;
  reason?: string;
}

interface AffiliationChange {
  kind: 'affiliation';
  jid: string;
  affiliation: Affiliation;
  nick?: string;
  reason?: string;
}

/** SET: role and affiliation changes, all checked before the first is applied. */
export async function adminSet(room: Room, from: Jid, query: Element): Promise<void> {
  const list = items(query);
  if (list.length === 0) throw new StanzaError('bad-request', 'no item');
  const { actor, occupant } = actorOf(room, from);
  const changes: (RoleChange | AffiliationChange)[] = [];
  // Affiliations as they will be after the changes before, for the checks of the next.
  const pending = new Map<string, Affiliation>();
  const current = (jid: string): Affiliation => {
    if (pending.has(jid)) return pending.get(jid)!;
    const parsed = tryParseJid(jid);
    return parsed ? room.affiliationOf(parsed) : 'none';
  };
  let owners = room.owners();
  for (const item of list) {
    const { role, affiliation } = item.attrs;
    const reason = item.getChildText('reason') ?? undefined;
    if (role !== undefined && affiliation !== undefined) throw new StanzaError('bad-request', 'change a role or an affiliation, not both at once');
    if (role !== undefined) {
      if (!isRole(role)) throw new StanzaError('bad-request', `no such role: ${role}`);
      const nick = item.attrs.nick;
      const target = nick === undefined ? undefined : room.occupants.get(nick);
      if (!target) throw new StanzaError(nick === undefined ? 'bad-request' : 'item-not-found', 'a role change names an occupant by nick');
      checkRoleChange(actor, { affiliation: current(target.bare.toString()), role: target.role }, role);
      changes.push({ kind: 'role', target, role, reason });
    } else if (affiliation !== undefined) {
      if (!isAffiliation(affiliation)) throw new StanzaError('bad-request', `no such affiliation: ${affiliation}`);
      const jid = subjectJid(room, item);
      const was = current(jid);
      checkAffiliationChange(actor.affiliation, was, affiliation, jid === from.bare.toString(), owners);
      if (was === 'owner' && affiliation !== 'owner') owners--;
      if (was !== 'owner' && affiliation === 'owner') owners++;
      pending.set(jid, affiliation);
      changes.push({ kind: 'affiliation', jid, affiliation, reason, nick: item.attrs.jid !== undefined ? item.attrs.nick : undefined });
    } else {
      throw new StanzaError('bad-request', 'an item changes a role or an affiliation');
    }
  }
  for (const change of changes) {
    if (change.kind === 'role') {
      // A target kicked by an earlier item of the same request is gone already.
      if (room.occupants.get(change.target.nick) === change.target) await room.setRole(change.target, change.role, occupant, change.reason);
    } else {
      await room.setAffiliation(change.jid, change.affiliation, occupant, change.reason, change.nick);
    }
  }
}
