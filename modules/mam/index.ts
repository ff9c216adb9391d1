// XEP-0313 message archive management for user archives, with XEP-0359 stanza-ids and the
// XEP-0441 preferences.
//
// What is archived (policy.ts): messages of type chat and normal with a body, and the payloads a
// device needs to replay a conversation (corrections, retractions, reactions, receipts, chat
// markers, encrypted payloads, call signalling, invitations); not chat states alone, errors,
// headlines, groupchat, or messages hinted <no-store/> or <no-permanent-store/>.
//
// Where:
//   stanza/in       a client's message, into the sender's archive ('out'), before routing.
//                   Low priority, after the modules that may refuse it (blocking); never stops.
//   message/bare,   a message for a local account, into its archive ('in'), before delivery
//   message/full    (and before offline storage, which runs after the chain): our <stanza-id
//                   by='user@host'/> is added to the stanza, so live delivery, offline storage
//                   and stream management's queue all carry it. Runs after blocking (priority
//                   1000), so refused messages are not archived (XEP-0313 §6.1).
// Both hooks await the commit: a message counts as handled only once archived (or delivered).
// The sender's next stanza need not wait for it: it starts once this message has its place in
// the recipient's archive queue (Router.inOrder), so a burst shares one group commit.
// When the archive write fails the message goes on without a stanza-id (delivered, or stored
// offline), and the failure is logged and counted (counters.archive_write_failures_total).
//
// One id for both archives: when sender and recipient are both local, the recipient's archive
// reuses the id of the sender's copy (the stanza-id the recipient sees is the result id both
// users find in their archives), unless that would put it before a message already in the
// recipient's archive: writes to one archive are serialized in this process, and each archive's
// ids are issued in increasing order, so a client that syncs "after the last id I have" never
// misses a message committed later with a smaller id (in this process; across cluster nodes,
// the ids of concurrent writes to one archive may interleave by a few milliseconds).
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { tryParseJid, type Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import { preEvents, type PreRouteEvent, type RouteEvent } from '../../src/module-api/events.js';
import { Priority } from '../../src/module-api/priorities.js';
import { StanzaError } from '../../src/stream/errors.js';
import { loggableStorageError } from '../../src/storage/errors.js';
import { RosterKey } from '../roster/service.js';
import { idTime } from '../../src/storage/archive/ids.js';
import { NS_MAM, NS_MAM_EXTENDED, NS_SID, isArchivable, prefsDecision, stanzaIdBy, stripStanzaIds, type ArchivePrefs } from './policy.js';
import { fin, metadata, parseQuery, queryForm, resultMessages } from '../../src/storage/archive/query.js';
import { Serial, type Started } from './serial.js';

/** A message's write queued into an archive: its id, and the commit (the id, or undefined: no such account). */
interface Queued extends Started<string | undefined> {
  id: string;
}
import { ArchiveItemNotFound, type ArchivedMessage, type Direction } from '../../src/storage/archive/store.js';
import { mamMigrations } from './migrations.js';
import { ALL } from '../../src/module-api/invalidation.js';

export const MamConfig = z.strictObject({
  /** Most messages in one page of results, whatever the client asks (RSM <max/>, or none). */
  max_page: z.number().int().min(1).max(10000).default(250),
  /** XEP-0441 default for accounts that set no preferences: 'always', 'roster' or 'never'. */
  default_mode: z.enum(['always', 'roster', 'never']).default('always'),
  /** Days a message stays in the archive; 0 keeps them forever. Purged hourly, oldest first. */
  retention_days: z.number().int().min(0).default(0),
  /**
   * Largest result set counted exactly for RSM <count/> and <first index=''/>; beyond it both
   * are left out (counting is a scan of the whole range: on PostgreSQL a visit of each row not
   * yet vacuumed, ~40 ms for 10,000 of them). 0 never counts.
   */
  count_limit: z.number().int().min(0).default(1000),
});

/** Preferences are cached this long; a change on another cluster node drops them at once (ctx.invalidation), this bounds a lost notice. */
const PREFS_TTL_MS = 60_000;
const CACHE_ENTRIES = 10_000;
const MAX_PREF_JIDS = 1000;
/** A shared id older than this is not reused: the recipient's archive gets a fresh one. */
const SHARED_ID_MAX_AGE_MS = 5_000;

/** A Map that forgets its oldest entries past `max`. */
function remember<K, V>(map: Map<K, V>, key: K, value: V, max = CACHE_ENTRIES): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
}

function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_FOREIGNKEY' || code === '23503';
}

export default defineModule({
  name: 'mam',
  depends: ['roster'],
  config: MamConfig,
  migrations: mamMigrations,
  async setup(ctx) {
    const { max_page, default_mode, retention_days, count_limit } = ctx.config;
    const store = ctx.store.archive('mam', { retention: { days: retention_days, host: ctx.domain } });
    const prefsStore = ctx.store.keyval<ArchivePrefs>('mam_prefs');
    const roster = ctx.use(RosterKey);
    const router = ctx.server.router;
    const serial = new Serial();
    /** The last id written to each archive by this process. */
    const lastIds = new Map<string, string>();
    /** A client's message -> its write into the sender's archive (its id, and the commit). */
    const sentWrites = new WeakMap<Element, Queued>();
    /** A message that got our stanza-id -> the archive (bare JID) it is in. */
    const stamped = new WeakMap<Element, string>();
    const prefsCache = new Map<string, { prefs: ArchivePrefs; at: number }>();

    ctx.accountFeature(NS_MAM);
    ctx.accountFeature(NS_MAM_EXTENDED);
    ctx.accountFeature(NS_SID);

    const defaults = (): ArchivePrefs => ({ default: default_mode, always: [], never: [] });

    const prefsOf = async (user: Jid): Promise<ArchivePrefs> => {
      const key = user.toString();
      const cached = prefsCache.get(key);
      if (cached && Date.now() - cached.at < PREFS_TTL_MS) return cached.prefs;
      const prefs = (await prefsStore.get(user.domain, user.local)) ?? defaults();
      remember(prefsCache, key, { prefs, at: Date.now() });
      return prefs;
    };

    /** XEP-0441: whether messages between `user` and `target` go into the user's archive. */
    const wanted = async (user: Jid, target: Jid): Promise<boolean> => {
      const decision = prefsDecision(await prefsOf(user), target);
      if (decision !== 'roster') return decision === 'archive';
      // 'roster': the contact's bare JID is on the roster. Notes to self count as known.
      if (target.bare.equals(user)) return true;
      return (await roster.item(user, target.bare)) !== undefined;
    };

    /**
     * Queues a message for `user`'s archive; to be started in the archive's Serial queue, so the
     * writes of an archive are queued in the order of their ids. Its work resolves with the id
     * once committed, or undefined when the account does not exist (a message to an unknown
     * local user, which the router bounces next).
     */
    const write = (user: Jid, direction: Direction, other: Jid, stanza: Element, shared?: string): Queued => {
      const key = user.toString();
      const last = lastIds.get(key);
      let id = shared;
      if (id === undefined || (last !== undefined && id <= last) || (idTime(id) ?? 0) < Date.now() - SHARED_ID_MAX_AGE_MS) id = store.newId();
      remember(lastIds, key, id);
      const committed = store.append(user.domain, user.local, {
        id,
        withBare: other.bare.toString(),
        withResource: other.resource,
        direction,
        stanza: stanza.toString(),
      });
      const written = id;
      return {
        id,
        work: committed.then(
          () => written,
          (err: unknown) => {
            if (isForeignKeyViolation(err)) return undefined;
            throw err;
          },
        ),
      };
    };

    /** Nothing to archive: the job only keeps the message's place in the queue. */
    const nothing: Started<undefined> = { work: Promise.resolve(undefined) };

    /**
     * A message that could not be archived goes on (delivered, or stored offline) without our
     * stanza-id: nothing tells a client it is in an archive it is not in. Counted on the server
     * core (archive_write_failures_total) and logged.
     */
    const archiveFailed = (err: unknown, user: string, direction: Direction, stanza: Element): void => {
      const failures = ctx.server.counters.inc('archive_write_failures_total');
      ctx.log.error({ err: loggableStorageError(err), user, direction, id: stanza.attrs.id, failures }, 'archiving a message failed; it goes on without a stanza-id');
    };

    // --- archiving ------------------------------------------------------------------------
    // Each hook queues its work on the archive's Serial queue at once (before any await), so
    // that the preferences lookup of one message cannot let a later one overtake it. Messages
    // that are not archived wait for the queue too, so they keep their place behind the others.

    const outgoing = async ({ stanza, to: target, origin: session }: PreRouteEvent): Promise<void> => {
      if (!session.jid) return;
      const user = session.jid.bare;
      const key = user.toString();
      // XEP-0359 §4: no stanza-id may claim to be by the sender's archive.
      stripStanzaIds(stanza, user);
      // A message to the user's own server is no conversation.
      if (!isArchivable(stanza) || (target.local === '' && target.domain === user.domain)) return serial.drained(key);
      const job = serial.queue(key, async (): Promise<Started<string | undefined>> => {
        if (!(await wanted(user, target))) return nothing;
        const queued = write(user, 'out', target, stanza);
        sentWrites.set(stanza, queued);
        return queued;
      });
      // The message goes on once its write is queued, so the recipient's copy joins the same
      // group commit; its routing (and so the sender's acknowledgement) is done once committed.
      router.holdUntil(
        stanza,
        job.done.then(
          () => {},
          (err: unknown) => {
            // Unarchived in the sender's archive (the recipient's copy may have its id).
            sentWrites.delete(stanza);
            archiveFailed(err, key, 'out', stanza);
          },
        ),
      );
      await job.started;
    };
    for (const event of preEvents('message')) ctx.hook(event, outgoing, Priority.COPY);

    const incoming = async ({ stanza, from, to, origin }: RouteEvent): Promise<void> => {
      const user = to.bare;
      const key = user.toString();
      // Once the message has its place in the archive's queue, the sender's next stanza may
      // start (Router.inOrder); this one goes on once committed and the one before is routed.
      const inQueue = async <T>(p: Promise<T>): Promise<T> => {
        const turn = router.inOrder(stanza);
        try {
          return await p;
        } finally {
          await turn;
        }
      };
      // Ours already: re-routed by the server (stream management, a session that ended).
      if (stamped.get(stanza) === key) return inQueue(serial.drained(key));
      const claimed = stanzaIdBy(stanza, user);
      // Not archived, and no claim to check (a groupchat message of a room's fan-out, say): the
      // job below would only strip, so strip now and just keep the message's place in the queue.
      if (claimed === undefined && !isArchivable(stanza)) {
        stripStanzaIds(stanza, user);
        return inQueue(serial.drained(key));
      }
      let id: string | undefined;
      try {
        id = await inQueue(
          serial.pipeline(key, async (): Promise<Started<string | undefined>> => {
            if (claimed !== undefined && origin === undefined && (await isOwnStamp(user, from, claimed))) {
              stamped.set(stanza, key);
              return nothing;
            }
            stripStanzaIds(stanza, user);
            if (!isArchivable(stanza)) return nothing;
            const sent = sentWrites.get(stanza);
            // To oneself: one archive, archived once (as sent).
            if (sent && from.bare.equals(user)) return sent;
            const shared = sent?.id;
            if (!(await wanted(user, from))) return nothing;
            return write(user, 'in', from, stanza, shared);
          }),
        );
      } catch (err) {
        // The message goes on without our stanza-id, and without forged ones.
        stripStanzaIds(stanza, user);
        archiveFailed(err, key, 'in', stanza);
        return;
      }
      if (id === undefined) return;
      stanza.append(xml('stanza-id', { xmlns: NS_SID, by: key, id }));
      stamped.set(stanza, key);
    };

    /**
     * A stanza-id by the user's archive on a message the server routes again without a session
     * (offline storage delivered it, the connection dropped unacknowledged, stream management
     * re-routes it): genuine when the archive holds that id as a message from the same sender
     * (or, for a message to oneself, archived as sent). Any other claim is removed as a forgery.
     */
    const isOwnStamp = async (user: Jid, from: Jid, id: string): Promise<boolean> => {
      const row = await store.get(user.domain, user.local, id);
      if (!row || row.withBare !== from.bare.toString()) return false;
      return row.direction === 'in' || from.bare.equals(user);
    };

    ctx.hook('message/bare', incoming, Priority.STAMP);
    ctx.hook('message/full', incoming, Priority.STAMP);

    // Preferences changed on another cluster node: read again at the next use.
    ctx.invalidation.on('mam-prefs', (key) => (key === ALL ? prefsCache.clear() : void prefsCache.delete(key)));

    ctx.hook('account/deleted', ({ jid }) => {
      const key = jid.bare.toString();
      prefsCache.delete(key);
      lastIds.delete(key);
    });

    // --- queries (the router lets only the account's own clients in: target 'self', XEP-0313 §8.1) --

    ctx.iq.get(
      NS_MAM,
      'query',
      (iq) => {
        return iq.reply(xml('query', { xmlns: NS_MAM }, queryForm()));
      },
      { to: 'self' },
    );

    ctx.iq.set(
      NS_MAM,
      'query',
      async (iq) => {
        const user = iq.to.bare;
        const { queryid, request, flip } = parseQuery(iq.payload, max_page);
        let page;
        try {
          page = await store.page(user.domain, user.local, { ...request, countLimit: count_limit });
        } catch (err) {
          if (err instanceof ArchiveItemNotFound) throw new StanzaError('item-not-found', err.message);
          throw err;
        }
        const leftOut = (err: unknown, message: ArchivedMessage) => ctx.log.error({ err, id: message.id }, 'an archived message does not parse; left out of the results');
        for (const result of resultMessages(user.toString(), iq.from.toString(), queryid, page, flip, leftOut)) {
          // The results go before the IQ result (XEP-0313 §4): deliver() is synchronous.
          if (iq.session) iq.session.deliver(result);
          else await router.route(result);
        }
        return iq.reply(fin(queryid, page));
      },
      { to: 'self' },
    );

    // XEP-0313 §5 (required with #extended): the first and last messages of the archive.
    ctx.iq.get(
      NS_MAM,
      'metadata',
      async (iq) => {
        const user = iq.to.bare;
        return iq.reply(metadata(await store.ends(user.domain, user.local)));
      },
      { to: 'self' },
    );

    // --- preferences (XEP-0441) -----------------------------------------------------------------

    const prefsElement = (prefs: ArchivePrefs): Element =>
      xml(
        'prefs',
        { xmlns: NS_MAM, default: prefs.default },
        xml('always', {}, ...prefs.always.map((j) => xml('jid', {}, j))),
        xml('never', {}, ...prefs.never.map((j) => xml('jid', {}, j))),
      );

    const jidList = (el: Element | undefined): string[] => {
      if (!el) return [];
      const list = new Set<string>();
      for (const item of el.getChildren('jid')) {
        const jid = tryParseJid(item.getText().trim());
        if (!jid) throw new StanzaError('jid-malformed', `not a JID: ${item.getText().trim()}`);
        list.add(jid.toString());
      }
      if (list.size > MAX_PREF_JIDS) throw new StanzaError('not-acceptable', `at most ${MAX_PREF_JIDS} JIDs per list`);
      return [...list];
    };

    ctx.iq.get(
      NS_MAM,
      'prefs',
      async (iq) => {
        const user = iq.to.bare;
        prefsCache.delete(user.toString());
        return iq.reply(prefsElement(await prefsOf(user)));
      },
      { to: 'self' },
    );

    ctx.iq.set(
      NS_MAM,
      'prefs',
      async (iq) => {
        const user = iq.to.bare;
        const mode = iq.payload.attrs.default;
        if (mode !== 'always' && mode !== 'roster' && mode !== 'never') {
          throw new StanzaError('bad-request', "'default' is to be always, roster or never");
        }
        const prefs: ArchivePrefs = {
          default: mode,
          always: jidList(iq.payload.getChild('always')),
          never: jidList(iq.payload.getChild('never')),
        };
        await prefsStore.set(user.domain, user.local, prefs);
        remember(prefsCache, user.toString(), { prefs, at: Date.now() });
        await ctx.invalidation.publish('mam-prefs', user.toString());
        return iq.reply(prefsElement(prefs));
      },
      { to: 'self' },
    );
  },
});
