// Which messages are copied to a user's other resources (XEP-0280 §6 "Messages Eligible for
// Carbons Delivery", the recommended rules of version 1.0, advertised as urn:xmpp:carbons:rules:0).
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';

export const NS_CARBONS = 'urn:xmpp:carbons:2';
export const NS_CARBONS_RULES = 'urn:xmpp:carbons:rules:0';
export const NS_FORWARD = 'urn:xmpp:forward:0';
export const NS_HINTS = 'urn:xmpp:hints';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_CONFERENCE = 'jabber:x:conference';
const NS_RECEIPTS = 'urn:xmpp:receipts';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_MARKERS = 'urn:xmpp:chat-markers:0';
const NS_JINGLE_MESSAGE = 'urn:xmpp:jingle-message:0';

/**
 * Payloads "typically used in IM" (§6.1): receipts (XEP-0184), chat states (XEP-0085), markers
 * (XEP-0333), and Jingle message initiation (XEP-0353: a call proposed, accepted or rejected on
 * one device must reach the user's others, also from clients that send it as type normal).
 */
const IM_PAYLOADS = new Set([NS_RECEIPTS, NS_CHATSTATES, NS_MARKERS, NS_JINGLE_MESSAGE]);

/** The sender asked for no copies: <private/> (§9) or the XEP-0334 <no-copy/> hint it goes with. */
export function optedOut(stanza: Element): boolean {
  return stanza.getChild('private', NS_CARBONS) !== undefined || stanza.getChild('no-copy', NS_HINTS) !== undefined;
}

/** A carbon copy itself (or something posing as one): never copied again. */
export function isCarbon(stanza: Element): boolean {
  return stanza.getChild('sent', NS_CARBONS) !== undefined || stanza.getChild('received', NS_CARBONS) !== undefined;
}

/**
 * Whether a message is copied. `direction` is 'sent' for a message a user's client sent (then
 * `peer` is its recipient) and 'received' for one delivered to a user (`peer` is its sender).
 */
export function eligible(stanza: Element, direction: 'sent' | 'received', peer: Jid | undefined): boolean {
  if (stanza.name !== 'message') return false;
  const type = stanza.attrs.type ?? 'normal';
  // §6.1: groupchat SHOULD NOT be copied. Errors would be copied only "in response to a message
  // that was itself eligible", which needs tracking of what was sent: not done, so none are.
  if (type === 'groupchat' || type === 'error') return false;
  if (optedOut(stanza) || isCarbon(stanza)) return false;

  // §6.1 on MUC: invitations are copied; a private message a local user sends to an occupant
  // (a full JID) is copied; one received from an occupant (a full JID) is not, the MUC service
  // replicates it to every joined client already. Without an <x/> marker a MUC private message
  // cannot be told apart from any other chat message and follows the general rules.
  const mucUser = stanza.getChild('x', NS_MUC_USER);
  if (mucUser) {
    if (mucUser.getChild('invite')) return true;
    if (direction === 'sent' && peer !== undefined && !peer.isBare) return true;
    if (direction === 'received' && peer !== undefined && !peer.isBare) return false;
  }
  if (stanza.getChild('x', NS_CONFERENCE)) return true; // a direct invitation (XEP-0249)

  if (type === 'chat') return true;
  if (type === 'normal' && stanza.getChild('body') !== undefined) return true;
  return stanza.children.some((c) => typeof c !== 'string' && IM_PAYLOADS.has(c.attrs.xmlns ?? ''));
}
