// Occupants' presence in a room (XEP-0045 §7): entering (with its order: the others' presence,
// the self-presence, history, subject), presence changes, nickname changes (303, 210), leaving,
// and a session that goes without a word. Functions of the room: the room runs them one at a
// time (Room.run).
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import type { Recipient } from './fanout.js';
import { parseHistoryRequest } from './history.js';
import { MUC, STATUS } from './ns.js';
import { Occupant, cleanChildren, occupantId } from './occupants.js';
import { defaultRole, isPrivileged } from './permissions.js';
import type { Room } from './room.js';

/** An error answering a join or presence change, with the MUC element (§7.2.6 ff. examples). */
function errorPresence(stanza: Element, error: StanzaError): Element {
  return xml('presence', { from: stanza.attrs.to, to: stanza.attrs.from, type: 'error', id: stanza.attrs.id }, xml('x', { xmlns: MUC.BASE }), error.toElement());
}

/** Presence to room@service/nick (§7.2 entering, §7.6 nick change, §7.7 status, §7.14 leaving). */
export async function presence(room: Room, stanza: Element, from: Jid, to: Jid, created = false): Promise<void> {
  const type = stanza.attrs.type;
  const occ = room.occupantOf(from);
  if (type === 'unavailable') {
    if (occ) await leave(room, occ, from, stanza);
    return;
  }
  if (type === 'error') {
    if (occ) await removeForError(room, occ, from);
    return;
  }
  if (type !== undefined) return; // subscriptions and probes mean nothing to a room
  if (to.resource.trim() === '') {
    return room.service.sender.send(errorPresence(stanza, new StanzaError('jid-malformed', 'a nickname is needed to enter a room')));
  }
  try {
    if (!occ) await enter(room, stanza, from, to, created);
    else if (occ.nick !== to.resource) await changeNick(room, occ, stanza, to);
    else await update(room, occ, from, stanza);
  } catch (err) {
    if (!(err instanceof StanzaError)) throw err;
    room.service.sender.send(errorPresence(stanza, err));
    if (created) room.vanishIfEmpty();
  }
}

/** Whether the nick as asked for was changed by preparation (status 210). */
function nickModified(stanza: Element, to: Jid): boolean {
  const raw = stanza.attrs.to ?? '';
  const slash = raw.indexOf('/');
  return slash !== -1 && raw.slice(slash + 1) !== to.resource;
}

/** §7.2: entering. The order: others' presence, ours to them, self-presence, history, subject. */
async function enter(room: Room, stanza: Element, from: Jid, to: Jid, created: boolean): Promise<void> {
  const join = stanza.getChild('x', MUC.BASE);
  const bare = from.bare;
  const affiliation = room.affiliationOf(bare);
  const nick = to.resource;
  if (room.locked && affiliation !== 'owner') throw new StanzaError('item-not-found', 'the room is being created');
  if (affiliation === 'outcast') throw new StanzaError('forbidden', 'you are banned from this room');
  if (affiliation === 'none' && room.service.blocklisted(bare)) throw new StanzaError('forbidden', 'you are on a blocklist of this service');
  if (room.config.membersOnly && affiliation === 'none') throw new StanzaError('registration-required', 'the room is members-only');
  const holder = room.occupants.get(nick);
  if (holder && !holder.bare.equals(bare)) throw new StanzaError('conflict', 'that nickname is in use');
  const reservedFor = room.reservedBy(nick);
  if (reservedFor !== undefined && reservedFor !== bare.toString()) throw new StanzaError('conflict', 'that nickname is reserved by a member');
  if (!holder && room.occupants.size >= room.config.maxOccupants && !isPrivileged(affiliation)) {
    throw new StanzaError('service-unavailable', 'the room is full', 'wait');
  }
  if (room.config.passwordProtected && !isPrivileged(affiliation)) {
    const given = join?.getChildText('password');
    if (given !== room.config.password) throw new StanzaError('not-authorized', given ? 'wrong password' : 'the room needs a password');
  }

  const recipient = room.service.recipient(from);
  let occ = holder;
  const fresh = !occ;
  if (!occ) {
    occ = new Occupant(to, bare, defaultRole(affiliation, room.config.moderated), occupantId(room.salt, bare));
    occ.presence = cleanChildren(stanza);
    room.occupants.set(nick, occ);
  }
  // A second session of the same user under the same nick joins that occupant.
  occ.sessions.set(recipient.str, recipient);
  room.bySession.set(recipient.str, occ);

  await sendOccupantsTo(room, occ, recipient);
  const selfCodes: number[] = [];
  if (room.config.whois === 'anyone') selfCodes.push(STATUS.NON_ANONYMOUS);
  if (room.config.logging && room.service.archiving) selfCodes.push(STATUS.LOGGING_ON);
  if (created) selfCodes.push(STATUS.CREATED);
  if (nickModified(stanza, to)) selfCodes.push(STATUS.NICK_ASSIGNED);
  // The new occupant's presence to the others, then its own self-presence (last, §7.2.3).
  if (fresh) await room.broadcastPresence(occ, { selfTo: [] });
  await room.broadcastPresence(occ, { selfCodes, selfId: stanza.attrs.id, selfTo: [recipient], others: false });
  await sendHistory(room, recipient, join?.getChild('history'));
  await sendSubject(room, recipient);
}

/** The presence of every other occupant, to someone entering. */
async function sendOccupantsTo(room: Room, occ: Occupant, to: Recipient): Promise<void> {
  const pending: Promise<void>[] = [];
  for (const other of room.occupants.values()) {
    if (other !== occ) room.service.sender.one(room.presenceOf(other, occ), to, pending);
  }
  await Promise.all(pending);
}

async function sendHistory(room: Room, to: Recipient, history: Element | undefined): Promise<void> {
  const request = parseHistoryRequest(history);
  const limit = room.config.historyLength;
  request.maxstanzas = Math.min(request.maxstanzas ?? limit, limit);
  const delayFrom = room.str;
  // 'to' and the delay element are what each stanza gains on delivery (counted in maxchars).
  const overhead = to.escaped.length + 6 + 90 + delayFrom.length;
  const pending: Promise<void>[] = [];
  for (const entry of room.history.select(request, Date.now(), overhead)) {
    const stanza = xml('message', { ...entry.stanza.attrs });
    stanza.children = [...entry.stanza.children, xml('delay', { xmlns: MUC.DELAY, from: delayFrom, stamp: new Date(entry.at).toISOString() })];
    room.service.sender.one(stanza, to, pending);
  }
  await Promise.all(pending);
}

/** §7.2.16: the subject comes last, even when there is none. */
async function sendSubject(room: Room, to: Recipient): Promise<void> {
  const subject = xml('message', { from: room.subject.by ?? room.str, type: 'groupchat', id: randomBytes(9).toString('base64url') }, xml('subject', {}, room.subject.text));
  const pending: Promise<void>[] = [];
  room.service.sender.one(subject, to, pending);
  await Promise.all(pending);
}

/** §7.7: a change of availability or status, to everyone. A new join element asks for the join sequence again. */
async function update(room: Room, occ: Occupant, from: Jid, stanza: Element): Promise<void> {
  occ.presence = cleanChildren(stanza);
  await room.broadcastPresence(occ, { selfId: stanza.attrs.id });
  const join = stanza.getChild('x', MUC.BASE);
  if (join) {
    const recipient = occ.sessions.get(from.toString())!;
    await sendOccupantsTo(room, occ, recipient);
    await sendHistory(room, recipient, join.getChild('history'));
    await sendSubject(room, recipient);
  }
}

/** §7.6: a new nickname: unavailable from the old one with 303, then available from the new. */
async function changeNick(room: Room, occ: Occupant, stanza: Element, to: Jid): Promise<void> {
  const nick = to.resource;
  const holder = room.occupants.get(nick);
  if (holder) throw new StanzaError('conflict', 'that nickname is in use');
  const reservedFor = room.reservedBy(nick);
  if (reservedFor !== undefined && reservedFor !== occ.bare.toString()) throw new StanzaError('conflict', 'that nickname is reserved by a member');
  await room.broadcastPresence(occ, { type: 'unavailable', children: [], item: { nick }, codes: [STATUS.NICK_CHANGED] });
  room.occupants.delete(occ.nick);
  occ.jid = to;
  room.occupants.set(nick, occ);
  occ.presence = cleanChildren(stanza);
  const selfCodes = nickModified(stanza, to) ? [STATUS.NICK_ASSIGNED] : [];
  await room.broadcastPresence(occ, { selfCodes, selfId: stanza.attrs.id });
}

/** §7.14: leaving; a user's other sessions under the same nick stay. */
async function leave(room: Room, occ: Occupant, from: Jid, stanza: Element): Promise<void> {
  const key = from.toString();
  const session = occ.sessions.get(key)!;
  const children = cleanChildren(stanza);
  if (occ.sessions.size > 1) {
    occ.sessions.delete(key);
    room.bySession.delete(key);
    await room.broadcastPresence(occ, { type: 'unavailable', children, selfTo: [session], others: false, selfId: stanza.attrs.id });
    return;
  }
  await room.removeOccupant(occ, { children, selfId: stanza.attrs.id });
}

/** A session of an occupant is gone (its stream closed without a goodbye to the room). */
export async function sessionGone(room: Room, real: string): Promise<void> {
  const occ = room.bySession.get(real);
  if (!occ) return;
  if (occ.sessions.size > 1) {
    occ.sessions.delete(real);
    room.bySession.delete(real);
    return;
  }
  await room.removeOccupant(occ, {});
}

/** An occupant's client bounced what the room sent it: it is no longer there (status 333). */
export async function removeForError(room: Room, occ: Occupant, from: Jid): Promise<void> {
  if (occ.sessions.size > 1) return sessionGone(room, from.toString());
  await room.removeOccupant(occ, { codes: [STATUS.REMOVED_ERROR] });
}
