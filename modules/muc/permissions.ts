// Affiliations and roles (XEP-0045 §5) and who may do what to whom. Pure functions: the room
// asks, and turns a refusal into the stanza error the spec names.
import { StanzaError } from '../../src/stream/errors.js';

export type Affiliation = 'owner' | 'admin' | 'member' | 'none' | 'outcast';
export type Role = 'moderator' | 'participant' | 'visitor' | 'none';

export const AFFILIATIONS: readonly Affiliation[] = ['owner', 'admin', 'member', 'none', 'outcast'];
export const ROLES: readonly Role[] = ['moderator', 'participant', 'visitor', 'none'];

const AFFILIATION_RANK: Record<Affiliation, number> = { outcast: 0, none: 1, member: 2, admin: 3, owner: 4 };
const ROLE_RANK: Record<Role, number> = { none: 0, visitor: 1, participant: 2, moderator: 3 };

export function isAffiliation(s: string | undefined): s is Affiliation {
  return s !== undefined && (AFFILIATIONS as readonly string[]).includes(s);
}

export function isRole(s: string | undefined): s is Role {
  return s !== undefined && (ROLES as readonly string[]).includes(s);
}

export function affiliationRank(a: Affiliation): number {
  return AFFILIATION_RANK[a];
}

export function roleRank(r: Role): number {
  return ROLE_RANK[r];
}

/** Admins and owners. */
export function isPrivileged(a: Affiliation): boolean {
  return a === 'owner' || a === 'admin';
}

/** The role an occupant gets on entering (§5.1.2 default roles). */
export function defaultRole(affiliation: Affiliation, moderated: boolean): Role {
  if (isPrivileged(affiliation)) return 'moderator';
  if (affiliation === 'member') return 'participant';
  if (affiliation === 'outcast') return 'none';
  return moderated ? 'visitor' : 'participant';
}

/** The role an occupant has after an affiliation change (§9, §10: roles follow affiliations). */
export function roleAfterAffiliation(current: Role, affiliation: Affiliation, moderated: boolean): Role {
  if (affiliation === 'outcast') return 'none';
  if (isPrivileged(affiliation)) return 'moderator';
  if (affiliation === 'member') return current === 'moderator' ? 'moderator' : 'participant';
  // Demoted to none: a moderator by affiliation drops to the default role; others keep theirs.
  return current === 'moderator' ? defaultRole('none', moderated) : current;
}

/** Whether an occupant of this role may send messages to all occupants (§5.1.1). */
export function hasVoice(role: Role): boolean {
  return role === 'participant' || role === 'moderator';
}

export interface Actor {
  affiliation: Affiliation;
  /** 'none' when the actor is not in the room. */
  role: Role;
}

/**
 * A moderator changes an occupant's role (§8: kick = none, voice = participant / visitor;
 * §9.6-9.7: moderator, only admins and owners). Throws the spec's error when not allowed.
 */
export function checkRoleChange(actor: Actor, target: { affiliation: Affiliation; role: Role }, role: Role): void {
  if (actor.role !== 'moderator' && !isPrivileged(actor.affiliation)) {
    throw new StanzaError('forbidden', 'only moderators may change roles');
  }
  // Admins and owners are moderators by affiliation: their role cannot be lowered (§9.7).
  if (isPrivileged(target.affiliation) && role !== 'moderator') {
    throw new StanzaError('not-allowed', 'the role of an admin or owner follows the affiliation');
  }
  // Nobody is kicked or silenced by someone of a lower affiliation (§8.2, §8.4).
  if (roleRank(role) < roleRank(target.role) && affiliationRank(target.affiliation) > affiliationRank(actor.affiliation)) {
    throw new StanzaError('not-allowed', 'the occupant has a higher affiliation');
  }
  // Granting or taking away the moderator role is for admins and owners (§9.6, §9.7).
  if ((role === 'moderator' || target.role === 'moderator') && !isPrivileged(actor.affiliation)) {
    throw new StanzaError('forbidden', 'only admins and owners may grant or revoke moderation');
  }
}

/**
 * An admin or owner changes a JID's affiliation (§9.1 ban, §9.3-9.4 members, §10.3-10.7 owners
 * and admins). `owners` is the number of owners now, for the last-owner rule.
 */
export function checkAffiliationChange(actor: Affiliation, current: Affiliation, next: Affiliation, self: boolean, owners: number): void {
  if (!isPrivileged(actor)) throw new StanzaError('forbidden', 'only admins and owners may change affiliations');
  if (actor === 'admin') {
    if (isPrivileged(next)) throw new StanzaError('forbidden', 'only owners may grant admin or owner status');
    if (isPrivileged(current)) throw new StanzaError('not-allowed', 'admins cannot change the affiliation of an admin or owner');
  }
  // §10.7: the room always keeps an owner.
  if (current === 'owner' && next !== 'owner' && owners <= 1) throw new StanzaError('conflict', 'a room needs at least one owner');
  if (self && next === 'outcast') throw new StanzaError('not-allowed', 'you cannot ban yourself');
}

/** Which affiliation lists an actor may read (§9.2, §9.5, §10.5, §10.8). */
export function checkListRead(actor: Actor, list: Affiliation, memberListRoles: readonly Role[]): void {
  if (list === 'owner' || list === 'admin') {
    if (!isPrivileged(actor.affiliation)) throw new StanzaError('forbidden', 'only admins and owners may see this list');
    return;
  }
  if (isPrivileged(actor.affiliation)) return;
  if (list === 'member' && actor.role !== 'none' && memberListRoles.includes(actor.role)) return;
  throw new StanzaError('forbidden', 'you may not see this list');
}

/** Which role lists an actor may read (§8.5 voice list: moderators; §9.8 moderators: admins). */
export function checkRoleListRead(actor: Actor, role: Role): void {
  if (role === 'moderator') {
    if (!isPrivileged(actor.affiliation)) throw new StanzaError('forbidden', 'only admins and owners may see the moderator list');
    return;
  }
  if (actor.role !== 'moderator' && !isPrivileged(actor.affiliation)) throw new StanzaError('forbidden', 'only moderators may see this list');
}
