// What the muc module offers other modules (ctx.use<MucApi>('muc')): the room-message event a
// room archive (XEP-0313, later) or a bot subscribes to, the archive hook point itself, and
// room disco features they add.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';

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
 * A room archive (XEP-0313 for rooms, to come). The room calls store() for each groupchat
 * message of a room whose logging is on, in the room's order, with the stanza id it put on the
 * message (the archive's id for it: a client may page the archive from it). The fan-out does
 * not wait for it: an archive that must keep order across its writes queues them itself.
 */
export interface RoomArchive {
  store(event: RoomMessageEvent): void | Promise<void>;
  /** A message a moderator retracted (XEP-0425): the archive replaces it with a tombstone. */
  retract?(room: Jid, stanzaId: string, by: string, reason: string | undefined): void | Promise<void>;
}

export interface MucApi {
  /** The service's domain (conference.<host> by default). */
  readonly domain: string;
  /** Subscribes to every groupchat message of every room of the service; returns the undo. */
  onRoomMessage(listener: (event: RoomMessageEvent) => void | Promise<void>): () => void;
  /** Installs the room archive (one at a time); returns the undo. */
  setArchive(archive: RoomArchive): () => void;
  /** Adds disco#info features to every room (the archive's urn:xmpp:mam:2); returns the undo. */
  addRoomFeature(feature: string): () => void;
  /** The rooms of the service now, by bare JID. */
  roomJids(): string[];
}
