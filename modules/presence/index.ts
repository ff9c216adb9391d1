// Presence (RFC 6121 §4): broadcast to subscribers and the user's own resources, probes at
// initial presence and their answers, directed presence remembered and undone on logout.
import { xml, type Element } from '@xmpp/xml';
import { sessionKey } from '../../src/module-api/keys.js';
import { defineModule } from '../../src/module-api/define.js';
import { preEvents, type PreRouteEvent, type RouteEvent } from '../../src/module-api/events.js';
import { tryParseJid } from '../../src/jid.js';
import type { Session } from '../../src/sessions/session.js';
import { RosterKey } from '../roster/service.js';
import { cloneElement } from '../../src/xml/clone.js';

/** Full JIDs that got directed presence from a session outside its subscriptions (RFC 6121 §4.6). */
const DIRECTED = sessionKey<Set<string>>('presence.directed');

export default defineModule({
  name: 'presence',
  depends: ['roster'],
  setup(ctx) {
    const roster = ctx.use(RosterKey);
    const router = ctx.server.router;
    const sessions = ctx.server.sessions;

    const copy = (stanza: Element, from: string, to: string) => {
      const p = cloneElement(stanza);
      p.attrs.from = from;
      p.attrs.to = to;
      return p;
    };

    const directedOf = (session: Session): Set<string> => {
      let set = session.data.get(DIRECTED);
      if (!set) session.data.set(DIRECTED, (set = new Set()));
      return set;
    };

    // The session's own presence changed: tell subscribers, the user's resources, and (when it
    // goes offline) everyone it sent directed presence to.
    ctx.hook('presence/broadcast', async ({ session, stanza, initial }) => {
      const full = session.jid!.toString();
      const user = session.jid!.bare;
      const items = await roster.items(user);
      for (const item of items) {
        if (item.subscription === 'from' || item.subscription === 'both') void router.route(copy(stanza, full, item.jid));
      }
      for (const other of sessions.resourcesOf(user)) {
        if (other.presence || other === session) other.deliver(copy(stanza, full, other.jid!.toString()));
      }
      if (stanza.attrs.type === 'unavailable') {
        for (const to of directedOf(session)) void router.route(copy(stanza, full, to));
        directedOf(session).clear();
        return;
      }
      if (!initial) return;
      // Initial presence: probe the contacts we are subscribed to (§4.2.2) ...
      for (const item of items) {
        if (item.subscription === 'to' || item.subscription === 'both') {
          void router.route(xml('presence', { type: 'probe', from: user.toString(), to: item.jid }));
        }
      }
      // ... and show the new resource the user's other available resources.
      for (const other of sessions.resourcesOf(user)) {
        if (other !== session && other.presence) session.deliver(copy(other.presence, other.jid!.toString(), full));
      }
    });

    // Directed presence from a client (§4.6): remember who got it, to undo it at logout.
    const trackDirected = async ({ stanza, to, origin }: PreRouteEvent) => {
      if (stanza.attrs.to === undefined) return;
      const type = stanza.attrs.type;
      if (type !== undefined && type !== 'unavailable') return;
      if (type === 'unavailable') directedOf(origin).delete(to.toString());
      else if (!(await roster.sharesPresenceWith(origin.jid!, to))) directedOf(origin).add(to.toString());
    };
    for (const event of preEvents('presence')) ctx.hook(event, trackDirected);

    // A session that ends without having been available still undoes its directed presence.
    ctx.hook('session/closed', ({ session }) => {
      const full = session.jid?.toString();
      if (!full) return;
      for (const to of directedOf(session)) void router.route(xml('presence', { type: 'unavailable', from: full, to }));
      directedOf(session).clear();
    });

    /** A probe asks for the current presence of each resource (§4.3.2), if the prober may see it. */
    const answerProbe = async (event: RouteEvent, onlyResource?: string) => {
      const user = event.to.bare;
      if (!(await roster.sharesPresenceWith(user, event.from))) return;
      const available = sessions.resourcesOf(user).filter((s) => s.presence && (!onlyResource || s.jid!.resource === onlyResource));
      for (const s of available) void router.route(copy(s.presence!, s.jid!.toString(), event.from.toString()));
      if (available.length === 0) void router.route(xml('presence', { type: 'unavailable', from: user.toString(), to: event.from.toString() }));
    };

    ctx.hook('presence/bare', async (event) => {
      const type = event.stanza.attrs.type;
      if (type === 'probe') {
        await answerProbe(event);
        return true;
      }
      if (type !== undefined && type !== 'unavailable') return true; // errors and unknown types stop here
      // Presence to a bare JID goes to every available resource (§4.6.3).
      for (const s of sessions.resourcesOf(event.to)) if (s.presence) s.deliver(event.stanza);
      return true;
    });

    ctx.hook('presence/full', async (event) => {
      if (event.stanza.attrs.type !== 'probe') return;
      await answerProbe(event, event.to.resource);
      return true;
    });
  },
});
