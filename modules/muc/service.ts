// The MUC service on its own domain (conference.<host>): the router hands it every stanza to
// that domain. It answers for itself (disco, unique room names), creates rooms on a first
// join, hands everything else to the room (one stanza at a time per room), keeps persistent
// rooms in the store, and offers other modules the room-message event and the archive hook.
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { parseJid } from '../../src/jid.js';
import type { Logger } from '../../src/log.js';
import type { Router } from '../../src/router/router.js';
import { StanzaError } from '../../src/stream/errors.js';
import { parseElement } from '../../src/xml/parse.js';
import { adminGet, adminSet } from './admin.js';
import type { ArchivedRoom, MucApi, RoomArchive, RoomMessageEvent } from './api.js';
import { roomInfo, roomItems, serviceInfo, serviceItems } from './disco.js';
import { Recipient, Sender } from './fanout.js';
import type { FloodLimit } from './flood.js';
import type { HistoryEntry } from './history.js';
import { moderate } from './moderation.js';
import { MUC } from './ns.js';
import { ownerGet, ownerSet } from './owner.js';
import { isAffiliation } from './permissions.js';
import { restoreConfig, type ConfigLimits } from './room-config.js';
import { Room, type AffiliationEntry, type RoomService, type UnlockReason } from './room.js';
import type { MucStore, StoredMessage, StoredRoom } from './store.js';

export type RoomCreation = 'anyone' | 'local' | 'admins';

export interface MucServiceOptions {
  domain: string;
  /** The service's name in disco. */
  name: string;
  limits: ConfigLimits;
  /** How many groupchat messages an occupant may send (undefined: no limit). */
  flood?: FloodLimit;
  creation: RoomCreation;
  /**
   * New rooms (joined with the MUC element) are locked until configured (§10.1); with
   * `autoUnlockMs` > 0 such a room also opens on its owner's first groupchat message, or that
   * long after it was created, whichever is first.
   */
  locking: { enabled: boolean; autoUnlockMs: number };
  /** Bare JIDs that own every room. */
  admins: string[];
  /** Whether an address is on a blocklist (anti_spam rtbl): its joins are refused, unless affiliated. */
  blocklisted?: (bare: Jid) => boolean;
  router: Router;
  /** Whether a domain is one this server serves to clients (its users' deliveries can be awaited). */
  isHost(domain: string): boolean;
  store: MucStore;
  log: Logger;
}

/**
 * In a cluster (cluster-rooms.ts): who serves a room, and what the other nodes need to know of
 * the rooms served here. Without one, every room is served here.
 */
export interface RoomCluster {
  /** A stanza to a room: served here (handleLocal) or forwarded to the room's node. */
  route(stanza: Element, from: Jid, to: Jid): Promise<void>;
  /** A room served here handled a stanza that may have changed its occupants. */
  changed(room: Room): void;
  /** A room served here is gone (destroyed, or temporary and empty). */
  gone(room: Room): void;
}

function payloadOf(stanza: Element): Element | undefined {
  let found: Element | undefined;
  for (const c of stanza.children) {
    if (typeof c === 'string' || c.name === 'error') continue;
    if (found) throw new StanzaError('bad-request', 'an IQ get or set carries exactly one child element');
    found = c;
  }
  return found;
}

export class MucService implements RoomService, MucApi {
  readonly rooms = new Map<string, Room>();
  readonly sender: Sender;
  readonly domain: string;
  readonly limits: ConfigLimits;
  readonly flood: FloodLimit | undefined;
  readonly log: Logger;
  private readonly admins: Set<string>;
  private readonly listeners = new Set<(event: RoomMessageEvent) => void | Promise<void>>();
  private readonly unlockListeners = new Set<(room: Jid, why: UnlockReason) => void>();
  /** Room features other modules added, each with the rooms it is for (undefined: every room). */
  private readonly features = new Map<string, ((room: ArchivedRoom) => boolean) | undefined>();
  private archive: RoomArchive | undefined;
  /** Set when clustered: rooms are served by one node at a time, loaded from storage on demand. */
  cluster: RoomCluster | undefined;

  constructor(private readonly options: MucServiceOptions) {
    this.domain = options.domain;
    this.limits = options.limits;
    this.flood = options.flood;
    this.log = options.log;
    this.sender = new Sender(options.router);
    this.admins = new Set(options.admins.map((a) => parseJid(a).bare.toString()));
  }

  // --- the router's entry point ----------------------------------------------------------------

  /** Every stanza to the service's domain. Throws StanzaError for the router to bounce. */
  readonly handle = async (stanza: Element, from: Jid, to: Jid): Promise<void> => {
    // What the service itself sent coming back (an invitation to one of its own rooms, an
    // error about one) is not handled again: no loops between rooms.
    if (from.domain === this.domain) return;
    if (to.local === '') return this.toService(stanza, from);
    if (this.cluster) return this.cluster.route(stanza, from, to);
    return this.handleLocal(stanza, from, to);
  };

  /** A stanza to a room served on this node. Throws StanzaError for the router to bounce. */
  async handleLocal(stanza: Element, from: Jid, to: Jid): Promise<void> {
    if (from.domain === this.domain) return;
    const room = this.rooms.get(to.local);
    if (room) {
      return room.run(async () => {
        await this.toRoom(room, stanza, from, to);
        // Occupants change on presence, IQ sets (kick, ban, configuration) and delivery errors (§18.1.2).
        if (stanza.name === 'presence' || stanza.attrs.type === 'set' || stanza.attrs.type === 'error') this.cluster?.changed(room);
      });
    }
    if (stanza.name === 'presence') {
      if (stanza.attrs.type === undefined && to.resource !== '') return this.create(stanza, from, to);
      return;
    }
    if (stanza.attrs.type === 'error' || stanza.attrs.type === 'result') return;
    throw new StanzaError('item-not-found', `there is no room ${to.bare.toString()}`);
  }

  private async toService(stanza: Element, from: Jid): Promise<void> {
    if (stanza.name !== 'iq') {
      if (stanza.name === 'message' && stanza.attrs.type !== 'error') throw new StanzaError('service-unavailable');
      return;
    }
    const type = stanza.attrs.type;
    if (type !== 'get' && type !== 'set') return;
    const payload = payloadOf(stanza);
    if (!payload) throw new StanzaError('bad-request', 'an IQ get or set carries exactly one child element');
    const ns = payload.attrs.xmlns;
    let answer: Element | undefined;
    if (type === 'get' && payload.name === 'query' && ns === MUC.DISCO_INFO) answer = serviceInfo(this.options.name, payload.attrs.node);
    else if (type === 'get' && payload.name === 'query' && ns === MUC.DISCO_ITEMS) answer = serviceItems(this.rooms.values(), payload.attrs.node, await this.storedItems());
    else if (type === 'get' && payload.name === 'ping' && ns === MUC.PING) answer = undefined;
    else if (type === 'get' && payload.name === 'unique' && ns === MUC.UNIQUE) {
      // §10.1.4: a room name nobody uses.
      let name: string;
      do name = randomBytes(10).toString('hex');
      while (this.rooms.has(name));
      answer = xml('unique', { xmlns: MUC.UNIQUE }, name);
    } else throw new StanzaError('service-unavailable');
    this.reply(stanza, from, answer);
  }

  /**
   * In a cluster, the public persistent rooms served by other nodes (or by none right now), from
   * storage; public temporary rooms only when served here.
   */
  private async storedItems(): Promise<{ jid: string; name: string }[]> {
    if (!this.cluster) return [];
    const items: { jid: string; name: string }[] = [];
    for (const { room, config } of await this.options.store.listing(this.domain)) {
      if (this.rooms.has(room)) continue;
      const c = restoreConfig(config, this.limits);
      if (c.public) items.push({ jid: `${room}@${this.domain}`, name: c.name || room });
    }
    return items;
  }

  private reply(stanza: Element, from: Jid, payload: Element | undefined): void {
    this.sender.send(xml('iq', { type: 'result', id: stanza.attrs.id, from: stanza.attrs.to, to: from.toString() }, payload ?? null));
  }

  /** Whether `from` may create rooms here (the room_creation option). */
  private mayCreate(from: Jid): boolean {
    switch (this.options.creation) {
      case 'anyone':
        return true;
      case 'local':
        return this.options.isHost(from.domain);
      case 'admins':
        return this.admins.has(from.bare.toString());
    }
  }

  /**
   * §10.1: the first presence to a room that does not exist creates it, with the sender as its
   * owner. With the MUC join element the room stays locked until configured (an instant room
   * takes the defaults, a reserved room gets the form), unless room locking is off; without it
   * (groupchat 1.0) it opens at once. A client that never configures the room (Dino 0.4
   * ignores 201) would leave it locked for good: it opens by itself (options.locking).
   */
  private async create(stanza: Element, from: Jid, to: Jid): Promise<void> {
    if (!this.mayCreate(from) || from.local === '') {
      this.sender.send(
        xml(
          'presence',
          { from: stanza.attrs.to, to: from.toString(), type: 'error', id: stanza.attrs.id },
          xml('x', { xmlns: MUC.BASE }),
          new StanzaError('not-allowed', 'you may not create rooms here').toElement(),
        ),
      );
      return;
    }
    const room = new Room(to.bare, this);
    room.affiliations.set(from.bare.toString(), { affiliation: 'owner' });
    if (this.options.locking.enabled && stanza.getChild('x', MUC.BASE) !== undefined) room.lock(this.options.locking.autoUnlockMs);
    this.rooms.set(to.local, room);
    this.log.info({ room: room.str, owner: from.bare.toString() }, 'room created');
    return room.run(async () => {
      await room.presence(stanza, from, to, true);
      this.cluster?.changed(room);
    });
  }

  private async toRoom(room: Room, stanza: Element, from: Jid, to: Jid): Promise<void> {
    // Destroyed while this stanza waited: it goes to whatever has the address now.
    if (room.destroyed) return this.handle(stanza, from, to);
    switch (stanza.name) {
      case 'presence':
        if (to.resource === '') {
          if (stanza.attrs.type === undefined) {
            this.sender.send(
              xml(
                'presence',
                { from: stanza.attrs.to, to: from.toString(), type: 'error', id: stanza.attrs.id },
                xml('x', { xmlns: MUC.BASE }),
                new StanzaError('jid-malformed', 'a nickname is needed to enter a room').toElement(),
              ),
            );
          }
          return;
        }
        return room.presence(stanza, from, to);
      case 'message':
        if (room.locked) {
          if (room.affiliationOf(from.bare) !== 'owner') throw new StanzaError('item-not-found', 'the room is being created');
          // The owner talks in a room it never configured: it opens with the configuration it has.
          if (stanza.attrs.type === 'groupchat' && to.resource === '' && room.occupantOf(from) && room.unlocksBySelf) room.unlock('message');
        }
        return room.message(stanza, from, to);
      case 'iq':
        if (to.resource !== '') return room.occupantIq(stanza, from, to);
        return this.roomIq(room, stanza, from);
    }
  }

  private async roomIq(room: Room, stanza: Element, from: Jid): Promise<void> {
    const type = stanza.attrs.type;
    if (type !== 'get' && type !== 'set') return;
    const payload = payloadOf(stanza);
    if (!payload) throw new StanzaError('bad-request', 'an IQ get or set carries exactly one child element');
    const ns = payload.attrs.xmlns;
    // A room being created exists only for its owner.
    if (room.locked && room.affiliationOf(from.bare) !== 'owner') throw new StanzaError('item-not-found', 'the room is being created');
    let answer: Element | undefined;
    const key = `${type} ${payload.name} ${ns}`;
    switch (key) {
      case `get query ${MUC.ADMIN}`:
        answer = adminGet(room, from, payload);
        break;
      case `set query ${MUC.ADMIN}`:
        await adminSet(room, from, payload);
        break;
      case `get query ${MUC.OWNER}`:
        answer = ownerGet(room, from, payload);
        break;
      case `set query ${MUC.OWNER}`:
        await ownerSet(room, from, payload);
        break;
      case `get query ${MUC.DISCO_INFO}`:
        answer = roomInfo(room, from, payload.attrs.node);
        break;
      case `get query ${MUC.DISCO_ITEMS}`:
        answer = roomItems(room, from, payload.attrs.node);
        break;
      case `get ping ${MUC.PING}`:
        break;
      case `set moderate ${MUC.MODERATE}`:
        await moderate(room, from, payload, this.archive);
        break;
      default:
        // XEP-0313 on the room's JID: the archive answers (and sends its replies itself).
        if (ns === MUC.MAM && this.archive?.query) return this.archive.query(room, stanza, payload, from);
        throw new StanzaError('service-unavailable');
    }
    this.reply(stanza, from, answer);
  }

  // --- what rooms need (RoomService) -----------------------------------------------------------

  recipient(jid: Jid): Recipient {
    return new Recipient(jid, this.options.isHost(jid.domain));
  }

  blocklisted(bare: Jid): boolean {
    return this.options.blocklisted?.(bare) ?? false;
  }

  isServiceAdmin(bare: Jid): boolean {
    return this.admins.size > 0 && this.admins.has(bare.toString());
  }

  private stored(room: Room): StoredRoom {
    // The history as the room's configuration keeps it (a new, shorter length trims it here).
    const entries = room.history.all();
    const kept = entries.slice(entries.length - Math.min(entries.length, room.config.historyLength));
    return {
      room: room.jid.local,
      config: JSON.stringify(room.config),
      subject: room.subject.text,
      subjectBy: room.subject.by,
      salt: room.salt,
      createdAt: room.createdAt,
      affiliations: [...room.affiliations].map(([jid, e]) => ({ jid, affiliation: e.affiliation, nick: e.nick, reason: e.reason })),
      history: kept.map((e) => ({ seq: e.seq, stanzaId: e.stanzaId, at: e.at, chars: e.chars, stanza: e.stanza.toString() })),
    };
  }

  async save(room: Room): Promise<void> {
    await this.options.store.save(this.domain, this.stored(room));
  }

  async saveState(room: Room): Promise<void> {
    await this.options.store.saveState(this.domain, room.jid.local, { config: JSON.stringify(room.config), subject: room.subject.text, subjectBy: room.subject.by });
  }

  async saveAffiliation(room: Room, jid: string, entry: AffiliationEntry | undefined): Promise<void> {
    await this.options.store.setAffiliation(this.domain, room.jid.local, jid, entry);
  }

  async saveMessage(room: Room, entry: HistoryEntry, xml: string): Promise<void> {
    const message = { seq: entry.seq, stanzaId: entry.stanzaId, at: entry.at, chars: entry.chars, stanza: xml };
    try {
      await this.options.store.addMessage(this.domain, room.jid.local, message, room.history.length);
    } catch (err) {
      // Broadcast already: the occupants have it; only a later joiner after a restart misses it.
      this.log.error({ err, room: room.str }, 'storing a history message failed');
    }
  }

  async removeMessage(room: Room, stanzaId: string): Promise<void> {
    await this.options.store.removeMessage(this.domain, room.jid.local, stanzaId);
  }

  async forget(room: Room): Promise<void> {
    await this.options.store.remove(this.domain, room.jid.local);
  }

  gone(room: Room): void {
    if (this.rooms.get(room.jid.local) === room) this.rooms.delete(room.jid.local);
    this.log.info({ room: room.str }, 'room gone');
    this.cluster?.gone(room);
    // Its archive goes with it (a room of the same name later starts with an empty one).
    if (this.archive?.removed) {
      try {
        const result = this.archive.removed(room.jid);
        if (result instanceof Promise) result.catch((err) => this.log.error({ err, room: room.str }, 'removing a room archive failed'));
      } catch (err) {
        this.log.error({ err, room: room.str }, 'removing a room archive failed');
      }
    }
  }

  unlocked(room: Room, why: UnlockReason): void {
    this.log.info({ room: room.str, why }, 'room unlocked');
    for (const listener of this.unlockListeners) {
      try {
        listener(room.jid, why);
      } catch (err) {
        this.log.error({ err }, 'a room-unlocked listener failed');
      }
    }
  }

  /** Subscribes to locked rooms opening (configured, or by themselves); returns the undo. */
  onRoomUnlocked(listener: (room: Jid, why: UnlockReason) => void): () => void {
    this.unlockListeners.add(listener);
    return () => void this.unlockListeners.delete(listener);
  }

  broadcasted(event: RoomMessageEvent): void {
    for (const listener of this.listeners) {
      try {
        const result = listener(event);
        if (result instanceof Promise) result.catch((err) => this.log.error({ err }, 'a room-message listener failed'));
      } catch (err) {
        this.log.error({ err }, 'a room-message listener failed');
      }
    }
    if (this.archive && event.logging) {
      try {
        const result = this.archive.store(event);
        if (result instanceof Promise) result.catch((err) => this.log.error({ err, room: event.room.toString() }, 'archiving a room message failed'));
      } catch (err) {
        this.log.error({ err, room: event.room.toString() }, 'archiving a room message failed');
      }
    }
  }

  *extraFeatures(room: Room): Iterable<string> {
    for (const [feature, when] of this.features) if (!when || when(room)) yield feature;
  }

  stanzaId(room: Room): string {
    // A logged room's messages get the archive's ids (its keys for paging); others a random one.
    if (room.config.logging && this.archive?.newId) return this.archive.newId();
    return randomBytes(12).toString('base64url');
  }

  get archiving(): boolean {
    return this.archive !== undefined;
  }

  // --- lifecycle -------------------------------------------------------------------------------

  /** Loads the persistent rooms (at start). */
  async restore(): Promise<number> {
    const stored = await this.options.store.rooms(this.domain);
    for (const s of stored) this.restoreRoom(s);
    return stored.length;
  }

  /** Loads one persistent room, when it is stored and not in memory already (a cluster node taking it over). */
  async load(local: string): Promise<void> {
    if (this.rooms.has(local)) return;
    const [stored] = await this.options.store.rooms(this.domain, local);
    if (stored && !this.rooms.has(local)) this.restoreRoom(stored);
  }

  private restoreRoom(s: StoredRoom): void {
    const room = new Room(parseJid(`${s.room}@${this.domain}`), this, {
      config: restoreConfig(s.config, this.limits),
      salt: s.salt,
      createdAt: s.createdAt,
    });
    room.subject = { text: s.subject, by: s.subjectBy };
    room.history.restore(this.restoredHistory(room, s.history));
    for (const a of s.affiliations) {
      if (isAffiliation(a.affiliation)) room.affiliations.set(a.jid, { affiliation: a.affiliation, nick: a.nick, reason: a.reason });
    }
    this.rooms.set(room.jid.local, room);
  }

  /** Stored history messages as entries; one that does not parse is left out (and logged). */
  private restoredHistory(room: Room, stored: StoredMessage[]): HistoryEntry[] {
    const entries: HistoryEntry[] = [];
    for (const m of stored) {
      try {
        const stanza = parseElement(m.stanza);
        delete stanza.attrs.xmlns;
        entries.push({ stanza, at: m.at, chars: m.chars, stanzaId: m.stanzaId, seq: m.seq });
      } catch (err) {
        this.log.error({ err, room: room.str, seq: m.seq }, 'a stored history message does not parse; left out');
      }
    }
    return entries;
  }

  /** A client session ended: it leaves every room it was in (when no unavailable presence said so). */
  sessionClosed(full: string): void {
    for (const room of this.rooms.values()) {
      if (!room.bySession.has(full)) continue;
      const left = async () => {
        await room.sessionGone(full);
        this.cluster?.changed(room);
      };
      void room.run(left).catch((err) => this.log.error({ err }, 'leaving a room failed'));
    }
  }

  /** The server is stopping: every occupant is told (332). */
  async shutdown(): Promise<void> {
    await Promise.all([...this.rooms.values()].map((room) => room.run(() => room.shutdown()).catch(() => {})));
  }

  // --- MucApi ----------------------------------------------------------------------------------

  onRoomMessage(listener: (event: RoomMessageEvent) => void | Promise<void>): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  setArchive(archive: RoomArchive): () => void {
    if (this.archive) throw new Error('a room archive is installed already');
    this.archive = archive;
    return () => {
      if (this.archive === archive) this.archive = undefined;
    };
  }

  addRoomFeature(feature: string, when?: (room: ArchivedRoom) => boolean): () => void {
    this.features.set(feature, when);
    return () => void this.features.delete(feature);
  }

  get clustered(): boolean {
    return this.cluster !== undefined;
  }

  roomJids(): string[] {
    return [...this.rooms.values()].map((r) => r.str);
  }
}
