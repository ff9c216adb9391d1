// Which of an account's resources get a message sent to its bare JID (RFC 6121 §8.5.2.1).
import type { Element } from '@xmpp/xml';
import type { Session } from '../sessions/session.js';

/** Delivers the message to the right resources; false when none can take it. */
export function deliverToBare(resources: readonly Session[], stanza: Element): boolean {
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error' || type === 'groupchat') return false;
  const eligible = resources.filter((s) => s.presence !== undefined && s.priority >= 0 && !s.closed);
  if (eligible.length === 0) return false;
  if (type === 'headline') {
    // Headlines go to every available resource of non-negative priority.
    for (const s of eligible) s.deliver(stanza);
    return true;
  }
  // chat and normal: the resources of the highest priority (all of them when tied).
  const top = Math.max(...eligible.map((s) => s.priority));
  for (const s of eligible) if (s.priority === top) s.deliver(stanza);
  return true;
}
