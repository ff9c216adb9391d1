// XEP-0160 offline messages: a message for an account with no available resource of
// non-negative priority (RFC 6121 §8.5.2.2) is stored, and delivered with a XEP-0203 delay
// when a session of that account next sends available presence of non-negative priority.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { sessionKey } from '../../src/module-api/keys.js';
import type { Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import { Priority } from '../../src/module-api/priorities.js';
import type { Session } from '../../src/sessions/session.js';
import { StanzaError } from '../../src/stream/errors.js';
import { loggableStorageError, storageStanzaError } from '../../src/storage/errors.js';
import { NS } from '../../src/xml/namespaces.js';
import { parseElement } from '../../src/xml/parse.js';
import { decide } from './policy.js';
import type { ArchivedMessage } from '../../src/storage/archive/store.js';
import { offlineMigrations } from './migrations.js';
import { idAt } from '../../src/storage/archive/ids.js';
import { OfflineKey, type KeepResult } from './service.js';

/** XEP-0160 §4: the service discovery feature of offline message storage. */
export const FEATURE = 'msgoffline';

export const OfflineConfig = z.strictObject({
  /**
   * Most messages kept per account. A message beyond it is not stored and its sender gets
   * <service-unavailable/> (XEP-0160 §2: "the recipient's offline message queue is full").
   */
  max_messages: z.number().int().min(1).default(1000),
});

/** session.data key: whether this session was, at its last broadcast presence, one that offline messages go to. */
export const ELIGIBLE = sessionKey<boolean>('offline');

/**
 * Available with non-negative priority and connected: RFC 6121 §8.5.2.1's receiving resource.
 * Not a session kept for resumption (XEP-0198): what is handed to it is not yet delivered, and
 * the stored copy would be deleted.
 */
function canReceive(session: Session): boolean {
  return session.presence !== undefined && session.priority >= 0 && !session.closed && !session.hibernating;
}

export default defineModule({
  name: 'offline',
  config: OfflineConfig,
  // Its options are read from ctx.config at each use: a reload applies them live.
  reconfigure: () => true,
  migrations: offlineMigrations,
  setup(ctx) {
    // Each account's queue is an archive ('offline'), in arrival order; an item's time is when
    // it was stored.
    const store = ctx.store.archive('offline');
    ctx.feature(FEATURE);
    // In a cluster, the other nodes see which resources take offline messages: a message stored
    // on one node is handed over to an eligible resource on another (handOver).
    const sessions = ctx.server.sessions;
    sessions.shareFlag(ELIGIBLE);

    /** The message as delivered: a copy with our XEP-0203 delay (the time it was stored). */
    const withDelay = (message: ArchivedMessage): Element => {
      const stanza = parseElement(message.stanza);
      // A delay claiming to come from this server was not added by it: keep only ours.
      stanza.children = stanza.children.filter((c) => typeof c === 'string' || !(c.name === 'delay' && c.attrs.xmlns === NS.DELAY && c.attrs.from === ctx.domain));
      // XEP-0160 §2 recommends the delay; the text is the one of the specs' examples.
      stanza.append(xml('delay', { xmlns: NS.DELAY, from: ctx.domain, stamp: new Date(message.ts).toISOString() }, 'Offline Storage'));
      return stanza;
    };

    /**
     * Hands the stored messages to `session`, oldest first, then deletes them (one transaction,
     * see ArchiveStore.consume). "Handed" means session.deliver() took it: the bytes may still
     * be in the socket's buffer when the rows go. Stream management (XEP-0198) will own that
     * gap: it is to keep unacknowledged stanzas and put them back here when a session ends
     * without acking them; until then a connection that dies in that instant loses them.
     */
    const deliverStored = async (session: Session): Promise<number> => {
      const user = session.user;
      if (!user) return 0;
      return store.consume(user.domain, user.local, (messages) => {
        let handed = 0;
        for (const message of messages) {
          if (!canReceive(session)) break;
          let stanza: Element;
          try {
            stanza = withDelay(message);
          } catch (err) {
            // Written by us, so this is corruption: drop the row rather than block the queue.
            ctx.log.error({ err, id: message.id }, 'a stored offline message does not parse; dropped');
            handed++;
            continue;
          }
          session.deliver(stanza);
          handed++;
        }
        return handed;
      });
    };

    const deliverSafely = async (session: Session): Promise<void> => {
      try {
        const n = await deliverStored(session);
        if (n > 0) session.log.debug({ count: n }, 'offline messages delivered');
      } catch (err) {
        session.log.error({ err }, 'delivering offline messages failed; they stay stored');
      }
    };

    /** The session that offline messages go to now, if any: the highest priority one. */
    const receivingSession = (user: Jid): Session | undefined => {
      let best: Session | undefined;
      for (const s of ctx.server.sessions.resourcesOf(user)) {
        if (s.data.get(ELIGIBLE) !== true || !canReceive(s)) continue;
        if (!best || s.priority > best.priority) best = s;
      }
      return best;
    };

    /** Stores a message as the policy says; resolves once the row is committed (durability). */
    const keep = async (stanza: Element, from: Jid, to: Jid, receivedAt?: number): Promise<KeepResult> => {
      const decision = decide(stanza);
      if (decision !== 'store') return { notStored: decision };
      // An item's time is when the server received the message (its delay stamp): now, or
      // earlier for a message kept by stream management meanwhile.
      const id = receivedAt === undefined ? undefined : idAt(receivedAt);
      const item = { id, withBare: from.bare.toString(), withResource: from.resource, direction: 'in' as const, stanza: stanza.toString() };
      const result = await store.appendWithin(to.domain, to.local, item, ctx.config.max_messages);
      return result === 'full' ? { notStored: 'full' } : { stored: result };
    };

    /** The bounce of a message not stored, by why; undefined when it is dropped silently. */
    const refusal = (why: KeepResult): StanzaError | undefined => {
      if ('stored' in why || why.notStored === 'drop') return undefined;
      if (why.notStored === 'full') {
        // XEP-0160 §2 names <service-unavailable/> for a full queue. <resource-constraint/>
        // (type wait) would invite the sender to retry, which cannot help until the recipient
        // comes online; service-unavailable (cancel) says it will not be delivered.
        return new StanzaError('service-unavailable', "the recipient's offline message storage is full");
      }
      return new StanzaError('service-unavailable', 'the recipient is offline and the message asked not to be stored');
    };

    const handOver = async (user: Jid): Promise<void> => {
      const online = receivingSession(user);
      if (online) await deliverSafely(online);
    };

    ctx.provide(OfflineKey, {
      keep,
      takeBack: (user, ids) => store.removeItems(user.domain, user.local, ids),
      handOver,
    });

    // What is not stored is refused with a StanzaError (the router bounces it to the sender, and
    // 'message/delivered' does not fire for it): never taken silently.
    ctx.hook('message/offline', async ({ stanza, from, to }) => {
      if (decide(stanza) === 'pass') return false;
      let result: KeepResult;
      try {
        result = await keep(stanza, from, to);
      } catch (err) {
        // Logged here, once; the sender is told (resource-constraint while storage is down).
        const failures = ctx.server.counters.inc('offline_store_failures_total');
        ctx.log.error({ err: loggableStorageError(err), to: to.toString(), id: stanza.attrs.id, failures }, 'storing an offline message failed; the sender gets an error');
        throw storageStanzaError(err, 'the message could not be stored for the offline recipient');
      }
      const error = refusal(result);
      if (error) throw error;
      // A session may have become available while the row was being written, after the router
      // found none and after its own delivery had read the queue: hand it over now.
      if ('stored' in result) await handOver(to);
      return true;
    });

    // XEP-0160 §2: stored messages go to the resource that next sends available presence of
    // non-negative priority: the initial presence (initial: true) most often, but also a later
    // one that raises a negative priority, or an available presence after an unavailable one
    // (messages stored meanwhile would otherwise wait for the next login). Registered below
    // the default priority so presence handlers run first; it never stops the chain.
    ctx.hook(
      'presence/broadcast',
      async ({ session, stanza }) => {
        if (!session.user) return;
        const eligible = stanza.attrs.type === undefined && canReceive(session);
        const was = session.data.get(ELIGIBLE) === true;
        if (eligible) sessions.setFlag(session, ELIGIBLE);
        else sessions.clearFlag(session, ELIGIBLE);
        if (eligible && !was) await deliverSafely(session);
      },
      Priority.FALLBACK,
    );
  },
});
