// Which messages for an offline account are kept (XEP-0160 §3, XEP-0334, XEP-0085).
import type { Element } from '@xmpp/xml';
import { NS } from '../../src/xml/namespaces.js';

export const NS_HINTS = 'urn:xmpp:hints';
export const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_SID = 'urn:xmpp:sid:0';

/**
 * - `store`: keep it for later delivery.
 * - `drop`: nothing to keep and nothing to tell the sender (the stanza counts as handled).
 * - `refuse`: not kept; the sender gets <service-unavailable/>, as when storage is off.
 * - `pass`: not ours to decide (the router's default applies).
 */
export type OfflineDecision = 'store' | 'drop' | 'refuse' | 'pass';

export function decide(stanza: Element): OfflineDecision {
  // RFC 6121 §5.2.2: a missing or unknown type is 'normal'.
  const type = stanza.attrs.type ?? 'normal';
  // XEP-0160 §3: error and headline SHOULD NOT be stored; RFC 6121 §8.5.2.2.1 has the server
  // silently ignore both (the router already does before firing the hook).
  if (type === 'error' || type === 'headline') return 'drop';
  // XEP-0160 §3: groupchat SHOULD NOT be stored; the router bounces it with service-unavailable.
  if (type === 'groupchat') return 'pass';

  const standaloneChatState = isStandaloneChatState(stanza);
  // XEP-0334 §4.3: <no-store/> is not to be kept "in any permanent or temporary storage",
  // offline storage named as an example. Not storing it is what "offline storage is off" means
  // for this stanza, and RFC 6121 (quoted in XEP-0160 §1) has the server return
  // <service-unavailable/> then, so the sender learns it was not delivered. A standalone chat
  // state with the hint (clients add it to typing notifications) is dropped silently below.
  // <no-permanent-store/> (§4.2) allows temporary storage such as this one: it is stored.
  if (hasHint(stanza, 'no-store')) return standaloneChatState ? 'drop' : 'refuse';
  // XEP-0334 §4.4: <store/> asks for storage of what would not be kept otherwise.
  if (hasHint(stanza, 'store')) return 'store';
  // XEP-0160 §3: chat messages "that contain only Chat State Notifications (XEP-0085) content"
  // SHOULD NOT be stored. Chat states describe the sender's participation in a live
  // conversation (XEP-0085 §1: session-level state, not per-message content): stale once the
  // recipient comes back, so they are discarded, without an error bounce per typing
  // notification. The same applies to type normal.
  if (standaloneChatState) return 'drop';
  // Everything else of type normal or chat, body or not (receipts, markers, encrypted payloads
  // without a fallback body), is kept.
  return 'store';
}

export function hasHint(stanza: Element, name: string): boolean {
  return stanza.getChild(name, NS_HINTS) !== undefined;
}

/**
 * A message whose only content is a chat state: at least one chat-state element, and besides
 * them nothing but a thread, hints, stanza/origin ids or delays (no body, subject or payload).
 */
export function isStandaloneChatState(stanza: Element): boolean {
  let chatState = false;
  for (const child of stanza.children) {
    if (typeof child === 'string') continue;
    const ns = child.attrs.xmlns;
    if (ns === NS_CHATSTATES) chatState = true;
    else if (child.name === 'thread' && (ns === undefined || ns === NS.CLIENT || ns === NS.SERVER)) continue;
    else if (ns === NS_HINTS || ns === NS_SID || ns === NS.DELAY) continue;
    else return false;
  }
  return chatState;
}
