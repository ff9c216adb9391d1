// Rosters (RFC 6121 §2) with versioning (XEP-0237), and presence subscriptions (RFC 6121 §3,
// Appendix A): the roster is where subscription state lives, so both are handled here.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { sessionKey } from '../../src/module-api/keys.js';
import { defineModule } from '../../src/module-api/define.js';
import { preEvents, type PreRouteEvent } from '../../src/module-api/events.js';
import { Priority } from '../../src/module-api/priorities.js';
import { tryParseJid, type Jid } from '../../src/jid.js';
import { StanzaError, errorReply } from '../../src/stream/errors.js';
import { parseElement } from '../../src/xml/parse.js';
import { streamId } from '../../src/stream/xml-stream.js';
import { RosterStore, rosterMigrations, type StoredItem } from './store.js';
import { RosterKey, type RosterItem, type RosterService } from './service.js';
import { NONE, inbound, outbound, type SubState, type SubscriptionType } from './subscription.js';
import { cloneElement } from '../../src/xml/clone.js';

export const NS_ROSTER = 'jabber:iq:roster';
const NS_ROSTERVER = 'urn:xmpp:features:rosterver';
/** The session asked for its roster: it gets roster pushes (RFC 6121 §2.1.6). */
const INTERESTED = sessionKey<boolean>('roster.interested');
const SUBSCRIPTION_TYPES = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

export const RosterConfig = z.strictObject({
  /** Items one roster may hold. */
  max_items: z.number().int().min(1).default(1000),
  /** Longest item name and group name, in characters. */
  max_name_length: z.number().int().min(1).default(1023),
});

export default defineModule({
  name: 'roster',
  config: RosterConfig,
  // Its options are read from ctx.config at each use: a reload applies them live.
  reconfigure: () => true,
  migrations: rosterMigrations,
  async setup(ctx) {
    const store = new RosterStore(ctx.server.storage);
    const sessions = ctx.server.sessions;
    // In a cluster, a resource on another node that asked for the roster gets pushes from here too.
    sessions.shareFlag(INTERESTED);
    const router = ctx.server.router;

    // Every read-modify-write of a roster runs in store.locked() (one account at a time) with the
    // `tx` store it gives: concurrent stanzas of one account would otherwise lose updates.
    const locked = <T>(user: Jid, fn: (tx: RosterStore) => Promise<T>) => store.locked(user.domain, user.local, fn);

    const stateOf = async (user: Jid, contact: string, tx: RosterStore): Promise<{ item?: StoredItem; state: SubState }> => {
      const item = await tx.item(user.domain, user.local, contact);
      const pendingIn = (await tx.request(user.domain, user.local, contact)) !== undefined;
      if (!item) return { state: { ...NONE, pendingIn } };
      return { item, state: { subscription: item.subscription, pendingOut: item.ask, pendingIn, approved: item.approved } };
    };

    /** Sends a roster push to every resource that asked for the roster (RFC 6121 §2.1.6). */
    const push = (user: Jid, contact: string, item: RosterItem | undefined, version: number) => {
      for (const session of sessions.resourcesOf(user)) {
        if (!session.data.get(INTERESTED)) continue;
        session.deliver(
          xml('iq', { type: 'set', id: `push-${streamId()}`, to: session.jid!.toString() }, xml('query', { xmlns: NS_ROSTER, ver: String(version) }, itemElement(contact, item))),
        );
      }
    };

    /** Saves an item (undefined: removes it) and pushes the change once committed. */
    const save = async (user: Jid, contact: string, item: RosterItem | undefined, tx: RosterStore) => {
      const version = await tx.put(user.domain, user.local, contact, item);
      tx.afterCommit(() => push(user, contact, item, version));
    };

    /** Writes a new subscription state: the item (created when it must exist) and the pending-in request. */
    const applyState = async (tx: RosterStore, user: Jid, contact: string, before: { item?: StoredItem; state: SubState }, next: SubState, request?: Element) => {
      if (next.pendingIn !== before.state.pendingIn) {
        await tx.setRequest(user.domain, user.local, contact, next.pendingIn ? (request?.toString() ?? '<presence type="subscribe"/>') : undefined);
      }
      const changed = next.subscription !== before.state.subscription || next.pendingOut !== before.state.pendingOut || next.approved !== before.state.approved;
      // An inbound request alone does not put the contact on the roster (RFC 6121 §3.1.3); a
      // subscription, a request of ours or a pre-approval (§3.4) does.
      const needsItem = before.item !== undefined || next.subscription !== 'none' || next.pendingOut || next.approved;
      if (changed && needsItem) {
        await save(user, contact, { ...(before.item ?? { jid: contact, groups: [] }), subscription: next.subscription, ask: next.pendingOut, approved: next.approved }, tx);
      }
    };

    /** Current presence of each available resource of `user`, to `to` (after an approval or a probe). */
    const sendPresenceOf = (user: Jid, to: string) => {
      for (const session of sessions.resourcesOf(user)) {
        if (!session.presence) continue;
        const p = cloneElement(session.presence);
        p.attrs.from = session.jid!.toString();
        p.attrs.to = to;
        void router.route(p);
      }
    };

    const service: RosterService = {
      items: (user) => store.items(user.domain, user.local),
      item: (user, contact) => store.item(user.domain, user.local, contact.bare.toString()),
      async sharesPresenceWith(user, contact) {
        if (user.bare.equals(contact.bare)) return true;
        const item = await store.item(user.domain, user.local, contact.bare.toString());
        return item?.subscription === 'from' || item?.subscription === 'both';
      },
    };
    ctx.provide(RosterKey, service);

    // Pending inbound requests are re-sent to each newly available resource (RFC 6121 §3.1.3).
    ctx.hook('presence/broadcast', async ({ session, initial }) => {
      if (!initial) return;
      for (const { stanza } of await store.requests(session.jid!.domain, session.jid!.local)) {
        session.deliver(parseElement(stanza));
      }
    });

    ctx.streamFeature({ stage: 'post-auth', advertise: () => xml('ver', { xmlns: NS_ROSTERVER }) });

    // --- the roster IQs -----------------------------------------------------------------------

    ctx.iq.get(
      NS_ROSTER,
      'query',
      async (iq) => {
        if (iq.session) sessions.setFlag(iq.session, INTERESTED);
        const user = iq.from.bare;
        const current = await store.version(user.domain, user.local);
        const asked = iq.payload.attrs.ver;
        const known = asked !== undefined && /^\d+$/.test(asked) ? Number(asked) : undefined;
        if (known !== undefined && known <= current) {
          // XEP-0237: an empty result, then the changes as pushes.
          const changes = await store.changedSince(user.domain, user.local, known);
          setImmediate(() => {
            for (const item of changes) push(user, item.jid, item.removed ? undefined : item, item.version);
          });
          return iq.reply();
        }
        const items = await store.items(user.domain, user.local);
        return iq.reply(xml('query', { xmlns: NS_ROSTER, ver: String(current) }, ...items.map((i) => itemElement(i.jid, i))));
      },
      { to: 'self' },
    );

    ctx.iq.set(
      NS_ROSTER,
      'query',
      async (iq) => {
        if (iq.stanza.attrs.from && !iq.session) throw new StanzaError('forbidden');
        const items = iq.payload.getChildren('item');
        if (items.length !== 1) throw new StanzaError('bad-request', 'a roster set carries exactly one item');
        const el = items[0]!;
        const contact = el.attrs.jid ? tryParseJid(el.attrs.jid) : null;
        if (!contact) throw new StanzaError('bad-request', 'the item needs a valid jid');
        const user = iq.from.bare;
        const key = contact.bare.toString();
        if (el.attrs.subscription === 'remove') {
          await removeItem(user, key);
          return iq.reply();
        }
        if (el.attrs.subscription !== undefined && el.attrs.subscription !== 'none') {
          throw new StanzaError('bad-request', 'subscription can only be set through presence');
        }
        const groups = el.getChildren('group').map((g) => g.getText());
        if (groups.some((g) => g === '')) throw new StanzaError('not-acceptable', 'empty group names are not allowed');
        if (new Set(groups).size !== groups.length) throw new StanzaError('bad-request', 'a group is listed twice');
        const limit = ctx.config.max_name_length;
        if ([el.attrs.name ?? '', ...groups].some((s) => [...s].length > limit)) throw new StanzaError('not-acceptable', `names are limited to ${limit} characters`);
        await locked(user, async (tx) => {
          const existing = await tx.item(user.domain, user.local, key);
          if (!existing && (await tx.count(user.domain, user.local)) >= ctx.config.max_items) {
            throw new StanzaError('not-allowed', `a roster holds at most ${ctx.config.max_items} items`);
          }
          await save(
            user,
            key,
            {
              jid: key,
              name: el.attrs.name || undefined,
              groups,
              subscription: existing?.subscription ?? 'none',
              ask: existing?.ask ?? false,
              approved: existing?.approved ?? false,
            },
            tx,
          );
        });
        return iq.reply();
      },
      { to: 'self' },
    );

    /** RFC 6121 §2.5.2: removing an item also ends the subscriptions both ways. */
    const removeItem = async (user: Jid, contact: string) => {
      const { item, state } = await locked(user, async (tx) => {
        const before = await stateOf(user, contact, tx);
        if (!before.item && !before.state.pendingIn) throw new StanzaError('item-not-found');
        await tx.setRequest(user.domain, user.local, contact, undefined);
        if (before.item) await save(user, contact, undefined, tx);
        return before;
      });
      const from = user.toString();
      if (item && (item.subscription === 'to' || item.subscription === 'both' || item.ask)) {
        void router.route(xml('presence', { type: 'unsubscribe', from, to: contact }));
      }
      if ((item && (item.subscription === 'from' || item.subscription === 'both')) || state.pendingIn) {
        void router.route(xml('presence', { type: 'unsubscribed', from, to: contact }));
      }
    };

    // --- subscriptions ------------------------------------------------------------------------

    // Outbound: the user's client sends a subscription stanza (RFC 6121 §3, Appendix A.2).
    const onOutbound = async ({ stanza, to: contact, origin }: PreRouteEvent) => {
      if (stanza.attrs.to === undefined || !SUBSCRIPTION_TYPES.has(stanza.attrs.type ?? '')) return;
      const user = origin.jid!.bare;
      const key = contact.bare.toString();
      // Subscription stanzas travel between bare JIDs (RFC 6121 §3.1.2).
      stanza.attrs.from = user.toString();
      stanza.attrs.to = key;
      const result = await locked(user, async (tx) => {
        const before = await stateOf(user, key, tx);
        const result = outbound(stanza.attrs.type as SubscriptionType, before.state);
        if (result.state.subscription !== before.state.subscription || result.state.pendingOut !== before.state.pendingOut) {
          if (!before.item && (await tx.count(user.domain, user.local)) >= ctx.config.max_items) return undefined;
        }
        await applyState(tx, user, key, before, result.state);
        return result;
      });
      if (!result) {
        await router.send(errorReply(stanza, new StanzaError('not-allowed', 'the roster is full')));
        return true;
      }
      if (!result.pass) return true;
      await router.route(stanza);
      // Approving a subscription sends our current presence to the new subscriber (§3.1.5).
      if (stanza.attrs.type === 'subscribed') sendPresenceOf(user, key);
      if (stanza.attrs.type === 'unsubscribed') {
        for (const s of sessions.resourcesOf(user)) if (s.presence) void router.route(xml('presence', { type: 'unavailable', from: s.jid!.toString(), to: key }));
      }
      return true;
    };
    for (const event of preEvents('presence')) ctx.hook(event, onOutbound, Priority.STATE);

    // Inbound: a contact's subscription stanza reaches a local user (Appendix A.3).
    const onInbound = async ({ stanza, from, to }: { stanza: Element; from: Jid; to: Jid }) => {
      const type = stanza.attrs.type ?? '';
      if (!SUBSCRIPTION_TYPES.has(type)) return;
      const user = to.bare;
      if (!(await ctx.server.accounts.store.exists(user.domain, user.local))) return true;
      const key = from.bare.toString();
      stanza.attrs.from = key;
      stanza.attrs.to = user.toString();
      const result = await locked(user, async (tx) => {
        const before = await stateOf(user, key, tx);
        const result = inbound(type as SubscriptionType, before.state);
        await applyState(tx, user, key, before, result.state, stanza);
        return result;
      });
      if (result.autoReply) {
        void router.route(xml('presence', { type: 'subscribed', from: user.toString(), to: key }));
        sendPresenceOf(user, key);
      }
      if (result.pass) {
        for (const s of sessions.resourcesOf(user)) if (s.presence) s.deliver(stanza);
      }
      return true;
    };
    ctx.hook('presence/bare', onInbound, Priority.STATE);
    ctx.hook('presence/full', onInbound, Priority.STATE);
  },
});

function itemElement(contact: string, item: RosterItem | undefined): Element {
  if (!item) return xml('item', { jid: contact, subscription: 'remove' });
  const attrs: Record<string, string> = { jid: contact, subscription: item.subscription };
  if (item.name) attrs.name = item.name;
  if (item.ask) attrs.ask = 'subscribe';
  if (item.approved) attrs.approved = 'true';
  return xml('item', attrs, ...item.groups.map((g) => xml('group', {}, g)));
}
