// Which stanzas reach an inactive client at once (XEP-0352 leaves the choice to the server;
// §3.2 suggests holding presence updates and chat-state-only messages). What a person would
// want to see now, or what the client is waiting for, is urgent; the rest can wait for the
// next urgent stanza, the client's <active/>, or a full buffer.
import type { Element } from '@xmpp/xml';

const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

/** Namespaces whose presence in a message makes it urgent, whatever the element. */
const URGENT_NAMESPACES = new Set([
  // End-to-end encrypted content: the body is inside (XEP-0380, XEP-0384 old and new, XEP-0373, XEP-0027).
  'urn:xmpp:eme:0',
  'eu.siacs.conversations.axolotl',
  'urn:xmpp:omemo:2',
  'urn:xmpp:openpgp:0',
  'jabber:x:encrypted',
  // A call being proposed, accepted or ended (XEP-0353).
  'urn:xmpp:jingle-message:0',
  // A direct MUC invitation (XEP-0249).
  'jabber:x:conference',
]);

/**
 * Parses `important_payloads` entries: "{namespace}element" for one element, "{namespace}" or
 * a bare namespace for anything in it.
 */
export function parsePayloads(entries: readonly string[]): { namespaces: Set<string>; elements: Set<string> } {
  const namespaces = new Set<string>();
  const elements = new Set<string>();
  for (const entry of entries) {
    const m = /^\{([^}]*)\}(.*)$/.exec(entry);
    if (!m) namespaces.add(entry);
    else if (m[2] === '') namespaces.add(m[1]!);
    else elements.add(`{${m[1]}}${m[2]}`);
  }
  return { namespaces, elements };
}

export type Importance = (stanza: Element) => boolean;

export function importance(extra: readonly string[] = []): Importance {
  const configured = parsePayloads(extra);
  const urgentMessage = (message: Element): boolean => {
    const type = message.attrs.type ?? 'normal';
    // An error about something the user sent.
    if (type === 'error') return true;
    for (const child of message.children) {
      if (typeof child === 'string') continue;
      const ns = child.attrs.xmlns ?? '';
      // Text for a person; a room's new subject.
      if (child.name === 'body' || child.name === 'subject') {
        if (ns === '' || ns === 'jabber:client') return true;
      }
      if (URGENT_NAMESPACES.has(ns) || configured.namespaces.has(ns) || configured.elements.has(`{${ns}}${child.name}`)) return true;
      // A mediated MUC invitation.
      if (ns === NS_MUC_USER && child.getChild('invite')) return true;
      // Results of a history query (XEP-0313) the client is waiting for.
      if (child.name === 'result' && ns.startsWith('urn:xmpp:mam:')) return true;
      // A copy of what the user wrote on another device (Prosody treats these alike): the user
      // is active somewhere; a copy of what was received is as urgent as the message itself.
      if (ns === NS_CARBONS && child.name === 'sent') return true;
      if (ns === NS_CARBONS && child.name === 'received') {
        const inner = child.getChild('forwarded', NS_FORWARD)?.getChild('message');
        if (inner && urgentMessage(inner)) return true;
      }
    }
    return false;
  };

  return (stanza) => {
    switch (stanza.name) {
      case 'message':
        return urgentMessage(stanza);
      case 'presence': {
        // Availability changes wait; subscription requests and answers, and errors, do not.
        const type = stanza.attrs.type;
        return type !== undefined && type !== 'unavailable';
      }
      default:
        // IQs: requests want an answer, results are awaited.
        return true;
    }
  };
}
