// Messages of other types to the room itself: mediated invitations and declines (XEP-0045
// §7.8.2, §7.8.2.1), and voice requests with their approval (§7.13, §8.6).
import { xml, type Element } from '@xmpp/xml';
import { tryParseJid, type Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import { findForm, first, form, parseBoolean, readForm } from './forms.js';
import { MUC } from './ns.js';
import { checkRoleChange, isPrivileged } from './permissions.js';
import type { Room } from './room.js';

export async function handleRoomMessage(room: Room, stanza: Element, from: Jid): Promise<void> {
  const x = stanza.getChild('x', MUC.USER);
  const invites = x?.getChildren('invite') ?? [];
  const declines = x?.getChildren('decline') ?? [];
  if (invites.length > 0) return invite(room, stanza, from, invites);
  if (declines.length > 0) return decline(room, from, declines);
  const request = findForm(stanza, MUC.REQUEST);
  if (request && request.attrs.type === 'submit') return voiceRequest(room, from, request);
  throw new StanzaError('bad-request', 'messages to the room are groupchat messages, invitations, declines or voice requests');
}

/** §7.8.2: the room sends each invitee the invitation (with the password); members-only rooms add a member. */
async function invite(room: Room, stanza: Element, from: Jid, invites: Element[]): Promise<void> {
  const occ = room.occupantOf(from);
  if (!occ) throw new StanzaError('not-acceptable', 'only occupants may invite others');
  const affiliation = room.affiliationOf(from.bare);
  const allowed = room.config.allowInvites || occ.role === 'moderator' || isPrivileged(affiliation);
  if (!allowed) throw new StanzaError('forbidden', 'only moderators may invite others to this room');
  const targets: Jid[] = [];
  for (const inv of invites) {
    const to = tryParseJid(inv.attrs.to ?? '');
    if (!to) throw new StanzaError('jid-malformed', 'an invitation needs a valid "to"');
    targets.push(to);
  }
  for (const [i, to] of targets.entries()) {
    const reason = invites[i]!.getChildText('reason');
    if (room.config.membersOnly && room.affiliationOf(to.bare) === 'none') {
      await room.setAffiliation(to.bare.toString(), 'member', occ, reason ?? undefined);
    }
    const text = `${from.bare.toString()} invites you to the room ${room.str}${reason ? `: ${reason}` : ''}`;
    room.send(
      xml(
        'message',
        { from: room.str, to: to.toString(), id: stanza.attrs.id },
        xml(
          'x',
          { xmlns: MUC.USER },
          xml('invite', { from: from.bare.toString() }, reason !== null ? xml('reason', {}, reason) : null),
          room.config.passwordProtected ? xml('password', {}, room.config.password) : null,
        ),
        // XEP-0249's element as well: clients that know only direct invitations understand it.
        xml('x', { xmlns: MUC.CONFERENCE, jid: room.str, reason: reason ?? undefined, password: room.config.passwordProtected ? room.config.password : undefined }),
        xml('body', {}, text),
      ),
    );
  }
}

/** §7.8.2.1: a declined invitation goes back to the inviter, from the invitee. */
async function decline(room: Room, from: Jid, declines: Element[]): Promise<void> {
  for (const d of declines) {
    const to = tryParseJid(d.attrs.to ?? '');
    if (!to) throw new StanzaError('jid-malformed', 'a decline needs a valid "to"');
    const reason = d.getChildText('reason');
    room.send(
      xml(
        'message',
        { from: room.str, to: to.toString() },
        xml('x', { xmlns: MUC.USER }, xml('decline', { from: from.bare.toString() }, reason !== null ? xml('reason', {}, reason) : null)),
      ),
    );
  }
}

/**
 * §7.13: a visitor asks for voice; each moderator gets the approval form. §8.6: a moderator
 * submits it back with muc#request_allow, which grants voice.
 */
async function voiceRequest(room: Room, from: Jid, submitted: Element): Promise<void> {
  const occ = room.occupantOf(from);
  if (!occ) throw new StanzaError('not-acceptable', 'only occupants may ask for voice');
  const values = readForm(submitted);
  const allow = parseBoolean('muc#request_allow', first(values, 'muc#request_allow'));
  if (allow !== undefined) {
    // An approval (or a refusal) from a moderator.
    const nick = first(values, 'muc#roomnick');
    const target = nick === undefined ? undefined : room.occupants.get(nick);
    if (!allow || !target || target.role !== 'visitor') return;
    checkRoleChange({ affiliation: room.affiliationOf(from.bare), role: occ.role }, { affiliation: room.affiliationOf(target.bare), role: target.role }, 'participant');
    await room.setRole(target, 'participant', occ, undefined);
    return;
  }
  if (first(values, 'muc#role') !== 'participant' || occ.role !== 'visitor') return;
  for (const moderator of room.occupants.values()) {
    if (moderator.role !== 'moderator') continue;
    const approval = form(
      'form',
      MUC.REQUEST,
      [
        { var: 'muc#role', type: 'list-single', label: 'Requested role', values: ['participant'], options: [['participant', 'Participant']] },
        { var: 'muc#jid', type: 'jid-single', label: 'User ID', values: [room.seesRealJids(moderator) ? occ.realJid : ''] },
        { var: 'muc#roomnick', type: 'text-single', label: 'Room nickname', values: [occ.nick] },
        { var: 'muc#request_allow', type: 'boolean', label: 'Grant voice to this person?', values: ['false'] },
      ],
      'Voice request',
      `${occ.nick} asks for voice in ${room.str}. To grant it, check the box and submit the form.`,
    );
    for (const session of moderator.sessions.values()) room.send(xml('message', { from: room.str, to: session.str }, approval));
  }
}
