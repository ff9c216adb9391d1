// Which of an account's resources get a message sent to its bare JID (RFC 6121 §8.5.2.1).
import type { Element } from '@xmpp/xml';
import type { Jid } from '../jid.js';
import type { Session } from '../sessions/session.js';

/**
 * Delivers the message to the right resources; returns the sessions that got it (empty when
 * none can take it), which message carbons (XEP-0280) must not send a copy to.
 */
export function deliverToBare(resources: readonly Session[], stanza: Element, from?: Jid): Session[] {
  const type = stanza.attrs.type ?? 'normal';
  if (type === 'error' || type === 'groupchat') return [];
  const eligible = resources.filter((s) => s.presence !== undefined && s.priority >= 0 && !s.closed);
  if (eligible.length === 0) return [];
  // Headlines go to every available resource of non-negative priority; chat and normal to the
  // resources of the highest priority (all of them when tied).
  const top = Math.max(...eligible.map((s) => s.priority));
  const receivers = type === 'headline' ? eligible : eligible.filter((s) => s.priority === top);
  for (const s of receivers) s.deliver(stanza, from);
  return receivers;
}
