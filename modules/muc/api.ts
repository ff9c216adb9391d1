// What the muc module offers other modules (ctx.use(MucKey)): the room-message event a
// room archive (XEP-0313: modules/muc-mam) or a bot subscribes to, the archive hook point
// itself (storing, ids, queries to the room, the room going), and room disco features they add.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';

/** A groupchat message a room broadcast (after the fan-out began). */
export interface RoomMessageEvent {
  /** The room's bare JID. */
  room: Jid;
  /** The message as broadcast, without 'to': from room@service/nick, with occupant-id and stanza-id. */
  stanza: Element;
  /** The XEP-0359 stanza id the room gave it (by the room's JID). */
  stanzaId: string;
  /** The sender's nickname, real bare JID and XEP-0421 occupant id. */
  nick: string;
  sender: Jid;
  occupantId: string;
  /** When the room received it (ms since the epoch). */
  at: number;
  /** Whether the room's configuration asks for the discussion to be archived (muc#roomconfig_enablelogging). */
  logging: boolean;
}

/**
 * What a room archive may read of a room, when it is asked something (the room's own object:
 * read it there and then, it changes with the room's next stanza).
 */
export interface ArchivedRoom {
  /** The room's bare JID, and as a string. */
  readonly jid: Jid;
  readonly str: string;
  readonly config: {
    /** muc#roomconfig_enablelogging. */
    readonly logging: boolean;
    /** Who may see occupants' real JIDs: moderators (semi-anonymous) or anyone (non-anonymous). */
    readonly whois: 'moderators' | 'anyone';
    readonly membersOnly: boolean;
    readonly passwordProtected: boolean;
  };
  /** A user's affiliation (service admins are owners). */
  affiliationOf(bare: Jid): 'owner' | 'admin' | 'member' | 'none' | 'outcast';
  /** The occupant a real full JID is in the room as, if any. */
  occupantOf(real: Jid): { readonly role: 'moderator' | 'participant' | 'visitor' | 'none'; readonly nick: string } | undefined;
}

/**
 * A room archive (XEP-0313 for rooms: modules/muc-mam). The room calls store() for each
 * groupchat message of a room whose logging is on, in the room's order, with the stanza id it
 * put on the message (the archive's id for it: a client may page the archive from it). The
 * fan-out does not wait for it: an archive that must keep order across its writes queues them
 * itself.
 */
export interface RoomArchive {
  store(event: RoomMessageEvent): void | Promise<void>;
  /** A message a moderator retracted (XEP-0425): the archive replaces it with a tombstone. */
  retract?(room: Jid, stanzaId: string, by: string, reason: string | undefined): void | Promise<void>;
  /**
   * The stanza id for the next message of a logged room, in the archive's own format (ids that
   * sort in time, for paging); called in the room's order. Without it the room makes random ids.
   */
  newId?(): string;
  /**
   * An IQ get or set with a payload in urn:xmpp:mam:2 to the room's bare JID (called in the
   * room's turn, so `room` is as it is now). Throws StanzaError to refuse at once; otherwise the
   * archive sends every reply itself (results, then the IQ result or error), so a long query
   * does not hold up the room's other stanzas.
   */
  query?(room: ArchivedRoom, iq: Element, payload: Element, from: Jid): void;
  /** The room is gone (destroyed, or a temporary room emptied): its archive goes with it. */
  removed?(room: Jid): void | Promise<void>;
}

export interface MucApi {
  /** The service's domain (conference.<host> by default). */
  readonly domain: string;
  /** Subscribes to every groupchat message of every room of the service; returns the undo. */
  onRoomMessage(listener: (event: RoomMessageEvent) => void | Promise<void>): () => void;
  /** Installs the room archive (one at a time); returns the undo. */
  setArchive(archive: RoomArchive): () => void;
  /**
   * Adds a disco#info feature to every room, or to the rooms `when` accepts (the archive's
   * urn:xmpp:mam:2, on logged rooms only); returns the undo.
   */
  addRoomFeature(feature: string, when?: (room: ArchivedRoom) => boolean): () => void;
  /** The rooms of the service now, by bare JID (in a cluster: of this node only). */
  roomJids(): string[];
  /** In a cluster, rooms are served by one node at a time and loaded when needed: roomJids() knows this node's only. */
  readonly clustered: boolean;
}

export const MucKey = serviceKey<MucApi>('muc');
