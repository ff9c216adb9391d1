// Which messages go into a user archive (XEP-0313 §6.1.1, XEP-0334 hints), whose XEP-0359
// stanza-ids are to be removed, and the XEP-0441 preferences.
import type { Element } from '@xmpp/xml';
import { namesBareJid, tryParseJid, type Jid } from '../../src/jid.js';

export { NS_MAM, NS_MAM_EXTENDED } from '../../src/storage/archive/query.js';
export const NS_SID = 'urn:xmpp:sid:0';
export const NS_HINTS = 'urn:xmpp:hints';

/** XEP-0441 preferences of an account (a keyval store, 'mam_prefs'). */
export interface ArchivePrefs {
  default: 'always' | 'roster' | 'never';
  always: string[];
  never: string[];
}

/**
 * Payloads that make a message worth archiving besides a <body>: what every device of the
 * user needs to replay the conversation when it syncs from the archive.
 */
const ARCHIVED_PAYLOADS: ReadonlyMap<string, ReadonlySet<string> | 'any'> = new Map<string, ReadonlySet<string> | 'any'>([
  // XEP-0308 last message correction.
  ['urn:xmpp:message-correct:0', new Set(['replace'])],
  // XEP-0424 message retraction (both namespace versions in use).
  ['urn:xmpp:message-retract:1', new Set(['retract'])],
  ['urn:xmpp:message-retract:0', 'any'],
  // XEP-0444 reactions.
  ['urn:xmpp:reactions:0', new Set(['reactions'])],
  // XEP-0184 receipts: the answer, not the request (a request comes with a body anyway).
  ['urn:xmpp:receipts', new Set(['received'])],
  // XEP-0333 chat markers (not <markable/>, which only accompanies a body).
  ['urn:xmpp:chat-markers:0', new Set(['received', 'displayed', 'acknowledged'])],
  // End-to-end encrypted payloads without a fallback body: OMEMO (legacy and :2), OpenPGP.
  ['eu.siacs.conversations.axolotl', new Set(['encrypted'])],
  ['urn:xmpp:omemo:2', new Set(['encrypted'])],
  ['urn:xmpp:openpgp:0', new Set(['openpgp'])],
  ['jabber:x:encrypted', 'any'],
  // XEP-0353 Jingle message initiation: call history on every device.
  ['urn:xmpp:jingle-message:0', 'any'],
  // XEP-0249 direct MUC invitations.
  ['jabber:x:conference', new Set(['x'])],
]);

/**
 * Whether a message is archived: type chat or normal (absent or unknown = normal, RFC 6121
 * §5.2.2) with a body or one of the payloads above, or with a <store/> hint (XEP-0334 §4.4);
 * never with <no-store/> or <no-permanent-store/> (XEP-0334 §4.2, §4.3), never errors,
 * headlines or groupchat (rooms keep their own archives). A chat state alone has nothing above,
 * so it is not archived.
 */
export function isArchivable(stanza: Element): boolean {
  if (stanza.name !== 'message') return false;
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error' || type === 'headline' || type === 'groupchat') return false;
  let content = false;
  let store = false;
  for (const child of stanza.children) {
    if (typeof child === 'string') continue;
    const ns = child.attrs.xmlns;
    if (ns === NS_HINTS) {
      if (child.name === 'no-store' || child.name === 'no-permanent-store') return false;
      if (child.name === 'store') store = true;
      continue;
    }
    if (child.name === 'body' && (ns === undefined || ns === 'jabber:client' || ns === 'jabber:server')) {
      content = true;
      continue;
    }
    const names = ns === undefined ? undefined : ARCHIVED_PAYLOADS.get(ns);
    if (names === 'any' || names?.has(child.name)) content = true;
  }
  return content || store;
}

/** Whether `child` is a stanza-id (XEP-0359) whose 'by' is `archive`. */
function isStanzaIdBy(child: Element | string, archive: Jid): child is Element {
  if (typeof child === 'string' || child.name !== 'stanza-id' || child.attrs.xmlns !== NS_SID) return false;
  // Compared as text where that is exact: a room's fan-out hands a 'by' over once for each occupant.
  return child.attrs.by !== undefined && namesBareJid(child.attrs.by, archive);
}

/**
 * Removes the stanza-ids claiming to be by `archive` (XEP-0359 §4: an entity that generates
 * stanza-ids deletes any other with its own 'by', "even if they are not adding their own", so a
 * sender cannot make up the archive id a client will trust). Returns how many it removed; the
 * children are left as they are (the same array) when there is none.
 */
export function stripStanzaIds(stanza: Element, archive: Jid): number {
  if (!stanza.children.some((c) => isStanzaIdBy(c, archive))) return 0;
  const before = stanza.children.length;
  stanza.children = stanza.children.filter((c) => !isStanzaIdBy(c, archive));
  return before - stanza.children.length;
}

/** Our stanza-id on the stanza for `archive`, if it carries one. */
export function stanzaIdBy(stanza: Element, archive: Jid): string | undefined {
  for (const c of stanza.children) {
    if (isStanzaIdBy(c, archive) && c.attrs.id) return c.attrs.id;
  }
  return undefined;
}

/**
 * XEP-0441 §2.3: a listed bare JID matches the target's bare JID, a listed full JID the target
 * as it is. 'never' wins over 'always' when both match (the safer reading of a contradiction).
 * Returns the decision, or 'roster' when the default applies and it is 'roster'.
 */
export function prefsDecision(prefs: ArchivePrefs, target: Jid): 'archive' | 'skip' | 'roster' {
  const matches = (listed: string) => {
    const jid = tryParseJid(listed);
    if (!jid) return false;
    return jid.isBare ? jid.equals(target.bare) : jid.equals(target);
  };
  if (prefs.never.some(matches)) return 'skip';
  if (prefs.always.some(matches)) return 'archive';
  if (prefs.default === 'always') return 'archive';
  if (prefs.default === 'never') return 'skip';
  return 'roster';
}
