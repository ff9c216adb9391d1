// A client's presence without 'to' (RFC 6121 §4.2, §4.5): the session's own availability and
// priority, mirrored to the session directory, then the 'presence/broadcast' hooks (the presence
// module sends it to the contacts). The router calls it once the 'pre-presence/bare' hooks let
// the stanza through.
import type { Element } from '@xmpp/xml';
import type { Host } from '../module-api/host.js';
import type { LocalSessions } from '../sessions/local-sessions.js';
import type { Session } from '../sessions/session.js';

export class OwnPresence {
  /** Sessions that have sent their initial presence. */
  private readonly announced = new WeakSet<Session>();

  constructor(private readonly sessions: LocalSessions) {}

  /** Available or unavailable presence: a change of availability (others are subscriptions, probes). */
  static isBroadcast(stanza: Element): boolean {
    return stanza.attrs.type === undefined || stanza.attrs.type === 'unavailable';
  }

  async change(session: Session, stanza: Element, host: Host | undefined): Promise<void> {
    const available = stanza.attrs.type === undefined;
    const initial = available && !this.announced.has(session);
    if (available) {
      this.announced.add(session);
      session.presence = stanza;
      const priority = Number.parseInt(stanza.getChildText('priority') ?? '0', 10);
      session.priority = Number.isFinite(priority) ? Math.max(-128, Math.min(127, priority)) : 0;
    } else {
      session.presence = undefined;
    }
    void this.sessions.publish(session);
    await host?.hooks.fire('presence/broadcast', { session, stanza, initial });
  }
}
