// XEP-0313 message archive management for MUC rooms (XEP-0045): the archive of a room is on
// the room's bare JID, and holds the groupchat messages of the rooms whose logging is on
// (muc#roomconfig_enablelogging). The muc module calls this one through its archive hook
// (MucApi.setArchive): each message of a logged room gets its stanza-id from here (time-ordered
// archive ids, src/storage/archive/ids.ts: the stanza-id an occupant sees is the archive id it pages
// from), is stored in the room's order, and the room hands over the MAM IQs sent to its JID.
// Storage, paging and the query protocol are those of the archive store kind
// (src/storage/archive/): the service archive 'muc_mam', one archive per room, owned by the
// room (service_archive: service = the MUC domain, node = the room's localpart), not by an
// account. What its columns hold: with_bare the sender's real bare JID (shown only to those who
// may see real JIDs), with_resource the sender's nickname then, direction always 'in', stanza
// the message as the room broadcast it (no 'to', no muc#user <x/>).
//
// Who may read a room's archive (XEP-0313 §6.1.2 "MUC Archives"): whoever has the right to enter
// the room at the time of the query. Never outcasts; in members-only rooms owners, admins and
// members (joined or not); in password-protected rooms its occupants, owners and admins (the
// query carries no password); in open rooms anyone, or with query_access = "occupants" only its
// occupants and affiliated users. Others get 'forbidden' (§8.1).
//
// What they see: the message as the room sent it, from room@service/nick without a 'to'; with
// <x xmlns='muc#user'><item jid='real bare JID'/></x> only when the querier may see real JIDs
// now (a non-anonymous room; moderators, and owners and admins, of a semi-anonymous one). 'with'
// an occupant JID (room@service/nick) selects that nick's messages; 'with' a real JID is for
// those who may see real JIDs only. Rooms whose logging is off have no archive to query
// (service-unavailable, and no urn:xmpp:mam:2 in their disco#info); what they logged before
// stays until the retention period or the room goes.
//
// A room's archive goes with the room: destroyed, or a temporary room left by its last
// occupant. Temporary rooms also end with the server, without telling anyone: at start the
// archives of rooms that no longer exist are deleted.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { parseJid, type Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import { StanzaError, errorReply } from '../../src/stream/errors.js';
import { idTime } from '../../src/storage/archive/ids.js';
import { NS_MAM, NS_MAM_EXTENDED, archivedStanza, fin, metadata, parseQuery, queryForm, resultMessages } from '../../src/storage/archive/query.js';
import { ArchiveItemNotFound, type NewItem, type ArchivedMessage } from '../../src/storage/archive/store.js';
import { MucKey, type ArchivedRoom, type RoomMessageEvent } from '../muc/api.js';
import { mucMamMigrations } from './migrations.js';

const NS_SID = 'urn:xmpp:sid:0';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_RETRACT = 'urn:xmpp:message-retract:1';
const NS_MODERATE = 'urn:xmpp:message-moderate:1';
const NS_OCCUPANT_ID = 'urn:xmpp:occupant-id:0';

export const MucMamConfig = z.strictObject({
  /** Most messages in one page of results, whatever the client asks (RSM <max/>, or none). */
  max_page: z.number().int().min(1).max(10000).default(250),
  /** Days a message stays in a room's archive; 0 keeps them until the room goes. Purged hourly, oldest first. */
  retention_days: z.number().int().min(0).default(0),
  /** Largest result set counted exactly for RSM <count/> and <first index=''/>; 0 never counts. */
  count_limit: z.number().int().min(0).default(1000),
  /**
   * Who may query an open room's archive: "entrants" (anyone who may enter it now, XEP-0313
   * §6.1.2) or "occupants" (those in the room now, and its members, admins and owners).
   */
  query_access: z.enum(['entrants', 'occupants']).default('entrants'),
});

/** What a querier may do with a room's archive, decided when the query arrives. */
interface Access {
  /** Whether the querier may see occupants' real JIDs. */
  realJids: boolean;
}

/** The message as a room archive keeps and forwards it: no 'to', no muc#user <x/> (XEP-0313 §8.4). Changes `stanza`. */
function asArchived(stanza: Element): Element {
  delete stanza.attrs.to;
  stanza.children = stanza.children.filter((c) => typeof c === 'string' || c.name !== 'x' || c.attrs.xmlns !== NS_MUC_USER);
  return stanza;
}

export default defineModule({
  name: 'muc_mam',
  depends: ['muc'],
  config: MucMamConfig,
  migrations: mucMamMigrations,
  async setup(ctx) {
    const { max_page, retention_days, count_limit, query_access } = ctx.config;
    const muc = ctx.use(MucKey);
    const service = muc.domain;
    const router = ctx.server.router;
    // Writes to the archives (messages, retractions, a room's removal) commit in the order they
    // are made (group commit: a busy room's messages go in together): ids are issued in the
    // room's order, so the archive order is the room's order, and a client that syncs "after the
    // last id I have" never misses a message committed later. Unloading (the server stopping)
    // commits the writes already queued, after the archive is taken out (no new writes).
    const store = ctx.store.archive('muc_mam', { owner: 'service', retention: { days: retention_days, host: service } });

    // Archives of rooms that no longer exist (temporary rooms the last stop ended). Not in a
    // cluster: the rooms of the other nodes (and persistent rooms, loaded when needed) are not known here.
    if (!muc.clustered) {
      const live = new Set(muc.roomJids().map((j) => parseJid(j).local));
      let orphans = 0;
      for (const room of await store.archives(service)) {
        if (live.has(room)) continue;
        orphans += await store.removeArchive(service, room);
      }
      if (orphans > 0) ctx.log.info({ messages: orphans, service }, 'archives of rooms that no longer exist deleted');
    }

    // --- archiving --------------------------------------------------------------------------

    /** The message as archived: as broadcast, without any muc#user <x/> (XEP-0313 §8.4). */
    const archivable = (stanza: Element): string => {
      const copy = xml(stanza.name, { ...stanza.attrs });
      copy.children = stanza.children;
      return asArchived(copy).toString();
    };

    const storeMessage = (event: RoomMessageEvent): Promise<void> => {
      const room = event.room;
      let id = event.stanzaId;
      if (idTime(id) === undefined) {
        // Not one of ours (the room was logged before this module gave it ids): a fresh one.
        id = store.newId();
        ctx.log.warn({ room: room.toString() }, 'a room message without an archive id; archived under a new one');
      }
      const message: NewItem = { id, withBare: event.sender.bare.toString(), withResource: event.nick, direction: 'in', stanza: archivable(event.stanza) };
      return store.append(service, room.local, message).then(() => {});
    };

    /** XEP-0425: the archived message becomes a tombstone saying who retracted it. */
    const retract = async (room: Jid, stanzaId: string, by: string, reason: string | undefined): Promise<void> => {
      await store.update(service, room.local, stanzaId, (row) => {
        const original = archivedStanza(row);
        const kept = original.children.filter(
          (c): c is Element => typeof c !== 'string' && ((c.name === 'occupant-id' && c.attrs.xmlns === NS_OCCUPANT_ID) || (c.name === 'stanza-id' && c.attrs.xmlns === NS_SID)),
        );
        const tombstone = xml(
          'message',
          { from: original.attrs.from, type: original.attrs.type, id: original.attrs.id },
          ...kept,
          xml(
            'retracted',
            { xmlns: NS_RETRACT, stamp: new Date().toISOString() },
            xml('moderated', { xmlns: NS_MODERATE, by }),
            reason !== undefined ? xml('reason', {}, reason) : null,
          ),
        );
        return tombstone.toString();
      });
    };

    const removed = async (room: Jid): Promise<void> => {
      const deleted = await store.removeArchive(service, room.local);
      if (deleted > 0) ctx.log.info({ room: room.toString(), messages: deleted }, 'room archive deleted with its room');
    };

    // --- queries ----------------------------------------------------------------------------

    /** XEP-0313 §6.1.2: the right to enter the room now; throws 'forbidden' without it. */
    const access = (room: ArchivedRoom, from: Jid): Access => {
      const affiliation = room.affiliationOf(from.bare);
      if (affiliation === 'outcast') throw new StanzaError('forbidden', 'you are banned from this room');
      const occupant = room.occupantOf(from);
      const privileged = affiliation === 'owner' || affiliation === 'admin';
      if (!occupant) {
        if (room.config.membersOnly && affiliation === 'none') throw new StanzaError('forbidden', "only the room's members may read its archive");
        if (room.config.passwordProtected && !privileged) throw new StanzaError('forbidden', 'the room needs a password: enter it to read its archive');
        if (query_access === 'occupants' && affiliation === 'none') throw new StanzaError('forbidden', 'only occupants may read the archive of this room');
      }
      return { realJids: room.config.whois === 'anyone' || privileged || occupant?.role === 'moderator' };
    };

    /** The forwarded message of a result: from the occupant JID, no 'to', the real JID only for those who may see it. */
    const forwardedStanza = (message: ArchivedMessage, a: Access): Element => {
      const stanza = asArchived(archivedStanza(message));
      if (a.realJids) stanza.append(xml('x', { xmlns: NS_MUC_USER }, xml('item', { jid: message.withBare })));
      return stanza;
    };

    const send = (stanza: Element): void => void router.route(stanza);

    /** Sends the replies of a query (results first, then the IQ result), or its error. */
    const answer = async (iq: Element, work: () => Promise<Element | undefined>): Promise<void> => {
      let payload: Element | undefined;
      try {
        payload = await work();
      } catch (err) {
        let error: StanzaError;
        if (err instanceof StanzaError) error = err;
        else if (err instanceof ArchiveItemNotFound) error = new StanzaError('item-not-found', err.message);
        else {
          ctx.log.error({ err }, 'a room archive query failed');
          error = new StanzaError('internal-server-error');
        }
        send(errorReply(iq, error));
        return;
      }
      send(xml('iq', { type: 'result', id: iq.attrs.id, from: iq.attrs.to, to: iq.attrs.from }, payload ?? null));
    };

    const query = (room: ArchivedRoom, iq: Element, payload: Element, from: Jid): void => {
      if (!room.config.logging) throw new StanzaError('service-unavailable', 'this room is not archived');
      const type = iq.attrs.type;
      const a = access(room, from);
      const key = room.str;
      const local = room.jid.local;

      if (type === 'get' && payload.name === 'query') {
        void answer(iq, async () => xml('query', { xmlns: NS_MAM }, queryForm()));
        return;
      }

      if (type === 'get' && payload.name === 'metadata') {
        // XEP-0313 §5 (required with #extended): the first and last messages of the archive.
        void answer(iq, async () => {
          await store.idle();
          return metadata(await store.ends(service, local));
        });
        return;
      }

      if (type !== 'set' || payload.name !== 'query') throw new StanzaError('service-unavailable');

      const { queryid, request, flip } = parseQuery(payload, max_page);
      // 'with' (§4.1.1): an occupant JID selects that nick's messages; the room's bare JID is
      // every message; a real JID the messages of that user, for those who may see real JIDs.
      if (request.with) {
        const w = request.with;
        if (w.bare === room.str) request.with = w.resource !== undefined ? { resource: w.resource } : undefined;
        else if (!a.realJids) throw new StanzaError('forbidden', "you may not see occupants' real JIDs: filter by occupant JID (room@service/nick)");
        // Real JIDs are kept bare: a full one selects its bare JID's messages.
        else request.with = { bare: w.bare };
      }
      const to = from.toString();
      void answer(iq, async () => {
        // After the writes already queued for this room: a client sees what it just sent.
        await store.idle();
        const page = await store.page(service, local, { ...request, countLimit: count_limit });
        const leftOut = (err: unknown, message: ArchivedMessage) =>
          ctx.log.error({ err, room: key, id: message.id }, 'an archived room message does not parse; left out of the results');
        // In order, and all before the IQ result (XEP-0313 §4).
        for (const result of resultMessages(key, to, queryid, page, flip, leftOut, (m) => forwardedStanza(m, a))) await router.route(result);
        return fin(queryid, page);
      });
    };

    ctx.onUnload(muc.setArchive({ store: storeMessage, retract, removed, query, newId: () => store.newId() }));
    const logged = (room: ArchivedRoom) => room.config.logging;
    ctx.onUnload(muc.addRoomFeature(NS_MAM, logged));
    ctx.onUnload(muc.addRoomFeature(NS_MAM_EXTENDED, logged));
  },
});
