// XEP-0280 Message Carbons (urn:xmpp:carbons:2): a client that enables carbons gets a copy of
// every instant message its account sends from its other resources (<sent/>) and of every one
// delivered to another of its resources (<received/>), so each device sees both sides of all
// conversations. Which messages count is in rules.ts.
import { xml, type Element } from '@xmpp/xml';
import { sessionKey } from '../../src/module-api/keys.js';
import { tryParseJid, type Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import type { IqRequest } from '../../src/module-api/iq.js';
import { preEvents, type PreRouteEvent, type RouteEvent } from '../../src/module-api/events.js';
import { Priority } from '../../src/module-api/priorities.js';
import type { ClientStream, Session } from '../../src/sessions/session.js';
import { StanzaError } from '../../src/stream/errors.js';
import { cloneElement } from '../../src/xml/clone.js';
import { NS } from '../../src/xml/namespaces.js';
import { NS_CARBONS, NS_CARBONS_RULES, NS_FORWARD, eligible } from './rules.js';
import { Bind2Key } from '../sasl/service.js';

export { NS_CARBONS, NS_CARBONS_RULES };

/** session.data key: true while the session has carbons enabled. */
export const CARBONS = sessionKey<boolean>('carbons');

export default defineModule({
  name: 'carbons',
  setup(ctx) {
    const sessions = ctx.server.sessions;
    // In a cluster, the other nodes copy to this node's enabled resources too.
    sessions.shareFlag(CARBONS);
    /** Messages whose <private/> was removed on the way to their local recipient (§9). */
    const privateMessages = new WeakSet<Element>();

    // §3: the server advertises the protocol, and (version 1.0) that it follows the
    // recommended eligibility rules of §6.1.
    ctx.feature(NS_CARBONS);
    ctx.feature(NS_CARBONS_RULES);

    const enabledResources = (user: Jid): Session[] => sessions.resourcesOf(user).filter((s) => s.data.get(CARBONS) === true && !s.closed && s.jid !== undefined);

    // --- enabling and disabling (§4, §5) ------------------------------------------------------

    const toggle = (on: boolean) => (iq: IqRequest) => {
      const session = iq.session;
      // §4.1 / §5.1: not-allowed for a request from anywhere but one of the account's own
      // sessions on this server, or about another account.
      if (!session?.jid || !iq.from.equals(session.jid)) throw new StanzaError('not-allowed', 'only a client of this server enables carbons, for itself');
      if (iq.to.local !== '' && !iq.to.equals(session.jid.bare)) throw new StanzaError('not-allowed', 'carbons of another account cannot be changed');
      // §10.1: enabling twice (or disabling twice) is no error.
      if (on) sessions.setFlag(session, CARBONS);
      else sessions.clearFlag(session, CARBONS);
      return iq.reply();
    };
    for (const [name, on] of [
      ['enable', true],
      ['disable', false],
    ] as const) {
      // No 'to' (the XEP's examples) or the account's bare JID; some clients address the server.
      ctx.iq.set(NS_CARBONS, name, toggle(on), { to: 'bare' });
      ctx.iq.set(NS_CARBONS, name, toggle(on), { to: 'host' });
    }

    // XEP-0386: <enable xmlns='urn:xmpp:carbons:2'/> inside a Bind 2 request.
    const bind2 = ctx.tryUse(Bind2Key);
    if (bind2) {
      ctx.onUnload(
        bind2.add({
          var: NS_CARBONS,
          enable(stream, request) {
            if (request.name === 'enable') sessions.setFlag(stream, CARBONS);
            return undefined;
          },
        }),
      );
    }

    /** The wrapper of a copy (§7, §8): from the user's bare JID to the receiving resource. */
    const wrap = (kind: 'sent' | 'received', original: Element, user: Jid, to: Session): Element => {
      const copy = cloneElement(original);
      // The copy sits in <forwarded/> (XEP-0297), where the default namespace is not jabber:client.
      copy.attrs.xmlns = NS.CLIENT;
      const attrs: Record<string, string> = { from: user.toString(), to: to.jid!.toString() };
      if (original.attrs.type !== undefined) attrs.type = original.attrs.type;
      return xml('message', attrs, xml(kind, { xmlns: NS_CARBONS }, xml('forwarded', { xmlns: NS_FORWARD }, copy)));
    };

    // --- sent messages (§8) -----------------------------------------------------------------
    // A client's message, once the other 'pre-message' hooks let it through (a hook that drops
    // it, such as blocking, runs before): a <sent/> copy to each of the account's other
    // carbons-enabled resources, whether or not the sender enabled carbons.
    const sent = ({ stanza, to, origin: session }: PreRouteEvent) => {
      if (!session.jid) return;
      const user = session.jid.bare;
      // To the account itself: its resources see it through the <received/> copies.
      if (to.bare.equals(user)) return;
      if (!eligible(stanza, 'sent', to)) return;
      for (const other of enabledResources(user)) if (other !== session) other.deliver(wrap('sent', stanza, user, other));
    };
    for (const event of preEvents('message')) ctx.hook(event, sent, Priority.COPY);

    // --- received messages (§7) -------------------------------------------------------------

    // §9: the receiving server SHOULD remove <private/> before delivering to the recipient; it
    // remembers the message so that no copy is made of it.
    const stripPrivate = ({ stanza }: RouteEvent) => {
      const mark = stanza.getChild('private', NS_CARBONS);
      if (!mark) return;
      privateMessages.add(stanza);
      stanza.children = stanza.children.filter((c) => c !== mark);
    };
    ctx.hook('message/bare', stripPrivate, Priority.COPY);
    ctx.hook('message/full', stripPrivate, Priority.COPY);

    // After the router delivered a message to a local account (or stored it): a <received/>
    // copy to each carbons-enabled resource that did not get the message itself, a bare-JID
    // message reaching several resources of equal priority included.
    ctx.hook('message/delivered', ({ stanza, from, to, origin, sessions: receivers, copiedTo, forwarded }) => {
      // Rerouted here by another node, which made the copies already.
      if (forwarded || privateMessages.has(stanza)) return;
      if (!eligible(stanza, 'received', from)) return;
      const user = to.bare;
      for (const other of enabledResources(user)) {
        // Nor to the resource that sent a message to its own account.
        if (receivers.includes(other) || other === origin) continue;
        other.deliver(wrap('received', stanza, user, other));
        copiedTo.push(other);
      }
    });
  },
});
