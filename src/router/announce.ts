// Announcements to the users of a host: a headline message from the host's domain to each of
// its client sessions, on every node of a cluster (the admins' XEP-0133 command, `starling announce`).
import { xml, type Element } from '@xmpp/xml';
import type { ServerCore } from '../module-api/core.js';

/** A headline from `from` (a host's domain) to one full JID. */
export function headline(from: string, to: string, subject: string, body: string): Element {
  return xml('message', { type: 'headline', from, to }, xml('subject', {}, subject), xml('body', {}, body));
}

/** Sends a headline to every bound session of `domain` (on every node); resolves with how many. */
export async function announce(core: Pick<ServerCore, 'sessions' | 'router'>, domain: string, subject: string, body: string): Promise<number> {
  const targets: string[] = [];
  for (const sessions of [core.sessions.all(), core.sessions.allRemote()]) {
    for (const session of sessions) if (session.jid?.domain === domain && !session.closed) targets.push(session.jid.toString());
  }
  for (const to of targets) await core.router.route(headline(domain, to, subject, body));
  return targets.length;
}
