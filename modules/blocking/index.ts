// XEP-0191 Blocking Command: the user's blocklist (get, block, unblock, unblock all) with
// pushes to the resources that asked for the list, and its enforcement:
//
// - inbound, from a blocked entity to the user (§3.3): presence is dropped without a word,
//   messages get <service-unavailable/>, IQ get/set get <service-unavailable/>, IQ results
//   and errors are dropped; the user appears offline;
// - outbound, from the user to a blocked entity: refused with <not-acceptable/> and
//   <blocked xmlns='urn:xmpp:blocking:errors'/>;
// - on block, unavailable presence goes to the contacts that received the user's presence, and
//   the user's clients get unavailable presence from the blocked contact's local resources; on
//   unblock, the user's current presence goes back to them and their presence is probed.
//
// Where it hooks in (all at a high priority, so nothing else sees a blocked stanza first):
//   stanza/in     every stanza a local client sends: outbound blocks, and inbound IQs to a
//                 local bare JID (the router hands those to IQ handlers with no hook);
//   message/*, presence/*  inbound stanzas to a user's bare or full JID;
//   stanza/out    the last gate before a session's socket (IQs to a full JID arrive only
//                 here), in both directions; synchronous, so it reads lists kept in memory for
//                 users with a session on this node (loaded before their bind completes);
//   route/remote  stanzas the server sends for a user to another domain.
//
// Not covered here: IQs to a user's bare JID from another server (the router has no hook for
// IQs to a bare JID; local senders are caught in stanza/in, and the last module asks this one);
// unavailable presence from a blocked remote contact's resources to the user's clients on block
// (which remote resources are available is the presence module's knowledge); and, in a cluster,
// lists changed on another node (each node keeps its own users' lists in memory, and pushes go
// to this node's sessions only).
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { sessionKey } from '../../src/module-api/keys.js';
import { parseJid, tryParseJid, JidError, type Jid } from '../../src/jid.js';
import { preEvents, type PreRouteEvent, type RouteEvent } from '../../src/module-api/events.js';
import { Priority } from '../../src/module-api/priorities.js';
import { defineModule } from '../../src/module-api/define.js';
import type { Session } from '../../src/sessions/session.js';
import { StanzaError, errorReply } from '../../src/stream/errors.js';
import { cloneElement } from '../../src/xml/clone.js';
import { RosterKey, type RosterService } from '../roster/service.js';
import { isBlockedBy, itemMatches } from './match.js';
import { BlockingKey, type BlockingService, type BlockItem, type BlockListener } from './service.js';
import { blockingMigrations } from './migrations.js';
import { ALL } from '../../src/module-api/invalidation.js';

export const NS_BLOCKING = 'urn:xmpp:blocking';
export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';
/** session.data key: this resource asked for the blocklist, so it gets pushes (§3.3). */
const INTERESTED = sessionKey<boolean>('blocking.interested');
/** Invalidation topic (a changed list, by bare JID) between cluster nodes. */
const TOPIC = 'blocking';
/** How often a cluster node drops the lists of users no longer online anywhere. */
const SWEEP_MS = 60_000;

export const BlockingConfig = z.strictObject({
  /** Entries one blocklist may hold. */
  max_items: z.number().int().min(1).default(1000),
});

export default defineModule({
  name: 'blocking',
  config: BlockingConfig,
  // Its options are read from ctx.config at each use: a reload applies them live.
  reconfigure: () => true,
  migrations: blockingMigrations,
  setup(ctx) {
    // The blocklist of an account: its blocked JIDs (prepared) are the keys of a map store.
    const store = ctx.store.map<true>('blocking');
    const { router, sessions } = ctx.server;

    // The lists of users with a session on this node, in memory while they have one: loaded
    // from authentication on and ready before the bind completes, because 'stanza/out' runs
    // synchronously and can only look at what is in memory.
    const lists = new Map<string, Set<string>>();
    const pending = new Map<string, Promise<Set<string>>>();
    const load = (user: Jid): Promise<Set<string>> => store.all(user.domain, user.local).then((items) => new Set(items.keys()));
    const ensureLoaded = (user: Jid): Promise<Set<string>> => {
      const key = user.toString();
      const have = lists.get(key);
      if (have) return Promise.resolve(have);
      let loading = pending.get(key);
      if (!loading) {
        const started: Promise<Set<string>> = load(user).then(
          (set) => {
            if (pending.get(key) === started) pending.delete(key);
            const current = lists.get(key) ?? set;
            lists.set(key, current);
            return current;
          },
          (err: unknown) => {
            if (pending.get(key) === started) pending.delete(key);
            throw err;
          },
        );
        pending.set(key, (loading = started));
      }
      return loading;
    };
    /**
     * A user's list: from memory when loaded, else from the database. A user online on another
     * node of a cluster gets a copy here too (a message routed here to them is checked from
     * memory): the invalidation bus keeps it current, the sweep below drops it once they leave.
     */
    const itemsOf = (user: Jid): Promise<Set<string>> => {
      const key = user.toString();
      const have = lists.get(key) ?? pending.get(key);
      if (have) return Promise.resolve(have);
      return sessions.resourcesOf(user).length > 0 ? ensureLoaded(user) : load(user);
    };

    /** Changes of one user's list run one at a time, so the cache follows the database. */
    const chains = new Map<string, Promise<unknown>>();
    const exclusive = <T>(user: Jid, fn: () => Promise<T>): Promise<T> => {
      const key = user.toString();
      const run = (chains.get(key) ?? Promise.resolve()).then(fn, fn);
      const tail = run.catch(() => {});
      chains.set(key, tail);
      void tail.then(() => {
        if (chains.get(key) === tail) chains.delete(key);
      });
      return run;
    };
    /** After a change is committed: the list in memory (or being loaded) follows. Idempotent changes only. */
    const updateCache = (user: Jid, change: (set: Set<string>) => void) => {
      const key = user.toString();
      const have = lists.get(key);
      if (have) change(have);
      void pending.get(key)?.then(change, () => {});
    };

    const listeners = new Set<BlockListener>();
    const service: BlockingService = {
      async isBlocked(user, other) {
        if (user.local === '') return false;
        return isBlockedBy(await itemsOf(user.bare), other);
      },
      async list(user) {
        return [...(await itemsOf(user.bare))].sort();
      },
      isBlockedNow(user, other) {
        const items = lists.get(user.bare.toString());
        return items && isBlockedBy(items, other);
      },
      onBlock(listener) {
        listeners.add(listener);
        return () => void listeners.delete(listener);
      },
    };
    ctx.provide(BlockingKey, service);

    /** The blocking service of the host serving `domain`, if it has one. */
    const serviceFor = (domain: string): BlockingService | undefined => (domain === ctx.domain ? service : ctx.server.hosts.get(domain)?.service(BlockingKey));

    /** Whether a local user `from` blocks `to` (a sender-side check). */
    const senderBlocks = async (from: Jid, to: Jid): Promise<boolean> => {
      if (from.local === '' || from.bare.equals(to.bare)) return false;
      const owner = serviceFor(from.domain);
      return owner ? owner.isBlocked(from.bare, to) : false;
    };

    /** Stanzas the module itself made, which its own filters let through. */
    const exempt = new WeakSet<Element>();
    const deliverExempt = (session: Session, stanza: Element) => {
      exempt.add(stanza);
      session.deliver(stanza);
    };
    /** A blocker's unavailable presence and errors may still reach a blocked entity. */
    const harmless = (stanza: Element) => stanza.attrs.type === 'error' || (stanza.name === 'presence' && stanza.attrs.type === 'unavailable');

    const loadFailed = (err: unknown) => ctx.log.warn({ err }, 'loading a blocklist failed');

    // --- the protocol (§3.2 - §3.5) -----------------------------------------------------------

    const accountOf = (from: Jid): Jid => {
      if (from.local === '' || from.domain !== ctx.domain) throw new StanzaError('service-unavailable');
      return from.bare;
    };

    const parseItems = (payload: Element): Jid[] =>
      payload.getChildren('item').map((item) => {
        const jid = item.attrs.jid;
        if (jid === undefined || jid === '') throw new StanzaError('bad-request', 'an <item/> needs a jid attribute');
        try {
          return parseJid(jid);
        } catch (err) {
          if (err instanceof JidError) throw new StanzaError('jid-malformed', `"${jid}": ${err.message}`);
          throw err;
        }
      });

    const itemList = (name: 'block' | 'unblock' | 'blocklist', jids: readonly string[]) => xml(name, { xmlns: NS_BLOCKING }, ...jids.map((jid) => xml('item', { jid })));

    /** Sends the change to every resource of the user that asked for the list. */
    const push = (user: Jid, payload: Element) => {
      for (const session of sessions.resourcesOf(user)) {
        if (session.closed || !session.data.get(INTERESTED)) continue;
        session.deliver(xml('iq', { type: 'set', id: `push-${randomBytes(6).toString('hex')}`, to: session.jid!.toString() }, cloneElement(payload)));
      }
    };

    /** Work after the reply has gone: a failure is logged, never a second reply. */
    const afterwards = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        ctx.log.error({ err }, `presence updates after ${what} failed`);
      }
    };

    ctx.feature(NS_BLOCKING);

    ctx.iq.get(NS_BLOCKING, 'blocklist', async (iq) => {
      const user = accountOf(iq.from);
      const items = [...(await (iq.session ? ensureLoaded(user) : itemsOf(user)))].sort();
      iq.session?.data.set(INTERESTED, true);
      return iq.reply(itemList('blocklist', items));
    });

    ctx.iq.set(NS_BLOCKING, 'block', async (iq) => {
      const user = accountOf(iq.from);
      const items = parseItems(iq.payload);
      if (items.length === 0) throw new StanzaError('bad-request', '<block/> needs at least one <item/>');
      const elements = iq.payload.getChildren('item');
      const blockItems: BlockItem[] = items.map((jid, i) => ({ jid, element: elements[i]! }));
      for (const listener of listeners) listener.check?.(user, blockItems);
      const jids = [...new Set(items.map((j) => j.toString()))];
      const added = await exclusive(user, async () => {
        const added = await store.update(user.domain, user.local, (list) => {
          const fresh = jids.filter((j) => !list.has(j));
          if (fresh.length > 0 && list.size + fresh.length > ctx.config.max_items) return undefined;
          for (const j of fresh) list.set(j, true);
          return fresh;
        });
        // <not-allowed/>, the answer RFC 6121 gives a roster set past the roster size limit.
        if (!added) throw new StanzaError('not-allowed', `a blocklist holds at most ${ctx.config.max_items} items`);
        updateCache(user, (set) => added.forEach((j) => set.add(j)));
        return added;
      });
      if (added.length > 0) await ctx.invalidation.publish(TOPIC, user.toString());
      // A listener that fails (a report not stored) makes the answer an error, once the block,
      // which is stored, has been pushed and acted on.
      let failure: unknown;
      try {
        for (const listener of listeners) await listener.blocked?.(user, blockItems);
      } catch (err) {
        failure = err;
      }
      if (failure === undefined) await router.send(iq.reply());
      push(user, itemList('block', jids));
      await afterwards('block', () =>
        presenceOnBlock(
          user,
          added.map((j) => parseJid(j)),
        ),
      );
      if (failure !== undefined) throw failure;
    });

    ctx.iq.set(NS_BLOCKING, 'unblock', async (iq) => {
      const user = accountOf(iq.from);
      const items = parseItems(iq.payload);
      const all = items.length === 0;
      const jids = [...new Set(items.map((j) => j.toString()))];
      const removed = await exclusive(user, async () => {
        const removed = await store.update(user.domain, user.local, (list) => {
          const present = all ? [...list.keys()] : jids.filter((j) => list.has(j));
          for (const j of present) list.delete(j);
          return present;
        });
        updateCache(user, (set) => (all ? set.clear() : removed.forEach((j) => set.delete(j))));
        return removed;
      });
      if (removed.length > 0) await ctx.invalidation.publish(TOPIC, user.toString());
      await router.send(iq.reply());
      push(user, itemList('unblock', jids));
      await afterwards('unblock', () =>
        presenceOnUnblock(
          user,
          removed.map((j) => parseJid(j)),
        ),
      );
    });

    // Another node changed a list: the copy here, when there is one, is read again, and this
    // node's resources that asked for the list get the difference (the other node pushes to its own).
    const refresh = (key: string) => {
      const user = tryParseJid(key);
      if (!user || user.domain !== ctx.domain || (!lists.has(key) && !pending.has(key))) return;
      void exclusive(user, async () => {
        const have = await ensureLoaded(user);
        const fresh = await load(user);
        const added = [...fresh].filter((j) => !have.has(j));
        const removed = [...have].filter((j) => !fresh.has(j));
        added.forEach((j) => have.add(j));
        removed.forEach((j) => have.delete(j));
        if (added.length > 0) push(user, itemList('block', added.sort()));
        if (removed.length > 0) push(user, itemList('unblock', removed.sort()));
      }).catch(loadFailed);
    };
    ctx.invalidation.on(TOPIC, (key) => (key === ALL ? [...lists.keys()].forEach(refresh) : refresh(key)));

    // --- presence on block and unblock ----------------------------------------------------------

    const availableSessions = (user: Jid) => sessions.resourcesOf(user).filter((s) => s.presence !== undefined && !s.closed);

    /** The contacts (bare JIDs) an item covers: itself, or the roster contacts within a domain item. */
    const contactsCovered = async (user: Jid, item: Jid, roster: RosterService | undefined): Promise<Jid[]> => {
      if (item.local !== '') return [item.bare];
      if (!roster) return [];
      const covered: Jid[] = [];
      for (const rosterItem of await roster.items(user)) {
        const contact = tryParseJid(rosterItem.jid);
        if (contact && itemMatches(item, contact)) covered.push(contact);
      }
      return covered;
    };

    /**
     * §3.3: unavailable presence to the contacts that received the user's presence; and the
     * user's clients see the blocked contact go offline (for contacts on this server, whose
     * resources are known here).
     */
    const presenceOnBlock = async (user: Jid, items: Jid[]) => {
      const mine = availableSessions(user);
      if (mine.length === 0 || items.length === 0) return;
      const roster = ctx.tryUse(RosterKey);
      for (const item of items) {
        for (const contact of await contactsCovered(user, item, roster)) {
          const to = item.local !== '' && item.resource !== '' ? item : contact;
          if (roster && (await roster.sharesPresenceWith(user, contact))) {
            for (const s of mine) await router.route(xml('presence', { type: 'unavailable', from: s.jid!.toString(), to: to.toString() }));
          }
          if (!ctx.server.hosts.has(contact.domain)) continue;
          for (const theirs of sessions.resourcesOf(contact)) {
            if (!theirs.presence || !theirs.jid || !itemMatches(item, theirs.jid)) continue;
            for (const s of mine) {
              deliverExempt(s, xml('presence', { type: 'unavailable', from: theirs.jid.toString(), to: s.jid!.toString() }));
            }
          }
        }
      }
    };

    /** §3.4: the user's current presence to the contacts allowed to see it; their presence probed again. */
    const presenceOnUnblock = async (user: Jid, items: Jid[]) => {
      const mine = availableSessions(user);
      const roster = ctx.tryUse(RosterKey);
      if (mine.length === 0 || items.length === 0 || !roster) return;
      for (const item of items) {
        for (const contact of await contactsCovered(user, item, roster)) {
          // Still blocked by another item (a domain, say): leave it be.
          if (await service.isBlocked(user, contact)) continue;
          const to = item.local !== '' && item.resource !== '' ? item : contact;
          if (await roster.sharesPresenceWith(user, contact)) {
            for (const s of mine) {
              const presence = cloneElement(s.presence!);
              presence.attrs.from = s.jid!.toString();
              presence.attrs.to = to.toString();
              delete presence.attrs.id;
              await router.route(presence);
            }
          }
          const subscription = (await roster.item(user, contact))?.subscription;
          if (subscription === 'to' || subscription === 'both') {
            await router.route(xml('presence', { type: 'probe', from: user.toString(), to: contact.toString() }));
          }
        }
      }
    };

    // --- enforcement ------------------------------------------------------------------------------

    // A client's own stanzas: outbound blocks, and inbound IQs to a local account's bare JID.
    const outbound = async ({ stanza, to, origin: session }: PreRouteEvent): Promise<boolean | void> => {
      if (stanza.attrs.to === undefined || !session.jid) return;
      const user = session.jid.bare;
      if (to.bare.equals(user) || (to.local === '' && to.domain === session.host)) return;
      const type = stanza.attrs.type;
      if (await service.isBlocked(user, to)) {
        // Errors and IQ results are not answered with errors (RFC 6120 §8.3.1).
        if (type === 'error' || (stanza.name === 'iq' && type === 'result')) return true;
        const blocked = new StanzaError('not-acceptable', 'you have blocked this address', 'cancel', xml('blocked', { xmlns: NS_BLOCKING_ERRORS }));
        deliverExempt(session, errorReply(stanza, blocked));
        return true;
      }
      if (stanza.name === 'iq' && to.local !== '' && to.isBare) {
        const owner = serviceFor(to.domain);
        if (owner && (await owner.isBlocked(to, session.jid))) {
          if (type === 'get' || type === 'set') deliverExempt(session, errorReply(stanza, new StanzaError('service-unavailable')));
          return true;
        }
      }
    };
    for (const kind of ['message', 'presence', 'iq'] as const) for (const event of preEvents(kind)) ctx.hook(event, outbound, Priority.GATE);

    // Stanzas to a user's bare or full JID.
    const inbound = async ({ stanza, from, to, origin }: RouteEvent): Promise<boolean | void> => {
      if (exempt.has(stanza)) return;
      const user = to.bare;
      // The user's own server is never blocked (blocking its domain blocks the other accounts).
      if (from.local === '' && from.domain === to.domain) return;
      if (!from.bare.equals(user) && (await service.isBlocked(user, from))) {
        if (stanza.name === 'message' && stanza.attrs.type !== 'error') router.bounce(stanza, new StanzaError('service-unavailable'));
        return true;
      }
      // What the server sends on a user's behalf (a client's own stanzas were checked on the way in).
      if (!origin && !harmless(stanza) && (await senderBlocks(from, to))) return true;
    };
    for (const event of ['message/bare', 'message/full', 'presence/bare', 'presence/full'] as const) ctx.hook(event, inbound, Priority.GATE);

    ctx.hook(
      'route/remote',
      async ({ stanza, from, to, origin }) => {
        if (origin || exempt.has(stanza) || harmless(stanza)) return;
        if (await senderBlocks(from, to)) return true;
      },
      Priority.GATE,
    );

    // The last gate before a client's socket, in both directions. It runs synchronously (the
    // core keeps delivery order), so it decides from the lists in memory: the session's own
    // user's list is loaded before the bind completes; a sender's list is known here when the
    // sender has a session on this node (a sender without one is checked by the routing hooks).
    ctx.hook(
      'stanza/out',
      ({ session, stanza, from: parsed }) => {
        if (exempt.has(stanza) || stanza.attrs.from === undefined || !session.jid) return;
        // Every stanza passes here: the router hands the sender it parsed; others parse it once here.
        const from = parsed ?? tryParseJid(stanza.attrs.from);
        if (!from) return;
        const user = session.jid.bare;
        if (from.bare.equals(user) || (from.local === '' && from.domain === session.host)) return;
        if (service.isBlockedNow(user, from)) {
          const type = stanza.attrs.type;
          if (stanza.name === 'iq' && (type === 'get' || type === 'set')) router.bounce(stanza, new StanzaError('service-unavailable'));
          return true;
        }
        if (from.local !== '' && !harmless(stanza) && serviceFor(from.domain)?.isBlockedNow(from.bare, session.jid)) return true;
      },
      Priority.GATE,
    );

    // --- the cache follows the sessions -------------------------------------------------------------

    ctx.hook('session/authenticated', ({ session }) => {
      if (session.user?.domain === ctx.domain) void ensureLoaded(session.user.bare).catch(loadFailed);
    });
    ctx.hook('session/bound', async ({ session }) => {
      if (session.jid?.domain === ctx.domain) await ensureLoaded(session.jid.bare).catch(loadFailed);
    });
    ctx.hook('session/closed', ({ session }) => {
      const user = session.jid?.bare;
      if (user && !sessions.resourcesOf(user).some((s) => s !== session)) lists.delete(user.toString());
    });
    ctx.hook('account/deleted', ({ jid }) => {
      lists.delete(jid.bare.toString());
    });
    // Copies of users whose sessions were on other nodes only, and who left (no hook fires here).
    if (ctx.server.cluster) {
      const sweep = setInterval(() => {
        for (const key of lists.keys()) {
          const user = tryParseJid(key);
          if (user && sessions.resourcesOf(user).length === 0 && !chains.has(key)) lists.delete(key);
        }
      }, SWEEP_MS);
      sweep.unref();
      ctx.onUnload(() => clearInterval(sweep));
    }
  },
});
