// One room (XEP-0045): its configuration, affiliations, occupants, subject and history; how it
// tells its occupants things (presence broadcasts with one serialisation per kind of recipient,
// fan-out of messages); and the changes moderators, admins and owners make (roles,
// affiliations, configuration, destruction). The stanzas it gets are handled in presence.ts
// (entering, nick changes, leaving), messages.ts (groupchat, subject, private messages),
// invites.ts, forwarding.ts (IQs to occupants), admin.ts and owner.ts (their IQs), disco.ts.
// A room handles one stanza at a time (run()), so its state and its output keep the order the
// stanzas came in.
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import type { Logger } from '../../src/log.js';
import type { RoomMessageEvent } from './api.js';
import { Prepared, type Recipient, type Sender } from './fanout.js';
import type { FloodLimit } from './flood.js';
import { occupantIq } from './forwarding.js';
import { History, type HistoryEntry } from './history.js';
import { message } from './messages.js';
import { MUC, STATUS } from './ns.js';
import type { Occupant } from './occupants.js';
import { userX, type ItemDetails } from './occupants.js';
import { roleAfterAffiliation, type Affiliation, type Role } from './permissions.js';
import { presence, sessionGone } from './presence.js';
import { defaultConfig, type ConfigLimits, type RoomConfig } from './room-config.js';

export interface AffiliationEntry {
  affiliation: Exclude<Affiliation, 'none'>;
  /** A reserved nickname (XEP-0045 §7.10). */
  nick?: string;
  reason?: string;
}

/** What a room needs of its service. */
export interface RoomService {
  readonly sender: Sender;
  readonly limits: ConfigLimits;
  /** How many groupchat messages an occupant may send (undefined: no limit). */
  readonly flood: FloodLimit | undefined;
  readonly log: Logger;
  /** The recipient for a real JID (whether its delivery may be awaited). */
  recipient(jid: Jid): Recipient;
  /** Service administrators are owners of every room. */
  isServiceAdmin(bare: Jid): boolean;
  /** Whether an address is on a blocklist the service applies to joins ([modules.muc] rtbl_ban). */
  blocklisted(bare: Jid): boolean;
  /** Writes the whole room (it is, or just became, persistent). */
  save(room: Room): Promise<void>;
  /** Writes the configuration and subject of a persistent room. */
  saveState(room: Room): Promise<void>;
  saveAffiliation(room: Room, jid: string, entry: AffiliationEntry | undefined): Promise<void>;
  /** Writes a new history message of a persistent room (`xml`: its serialisation); failures are logged, not thrown. */
  saveMessage(room: Room, entry: HistoryEntry, xml: string): Promise<void>;
  /** Removes a retracted message from a persistent room's stored history. */
  removeMessage(room: Room, stanzaId: string): Promise<void>;
  /** The room is no longer persistent, or destroyed: its rows go. */
  forget(room: Room): Promise<void>;
  /** The room is gone from memory (destroyed, or temporary and empty). */
  gone(room: Room): void;
  /** A locked room opened (configured, or by itself: the owner's first message, the lock timeout). */
  unlocked(room: Room, why: UnlockReason): void;
  /** A groupchat message was broadcast: listeners and the archive. */
  broadcasted(event: RoomMessageEvent): void;
  /** Extra disco#info features of this room (from other modules). */
  extraFeatures(room: Room): Iterable<string>;
  /** The XEP-0359 stanza id for the room's next groupchat message (the archive's id when logged). */
  stanzaId(room: Room): string;
  /** Whether an archive is installed (status 170 means something only then). */
  readonly archiving: boolean;
}

/** What opened a locked room. */
export type UnlockReason = 'configured' | 'message' | 'timeout';

export interface SubjectState {
  text: string;
  /** The occupant JID of whoever set it (room@service/nick), or undefined: the room. */
  by?: string;
}

/** Options of a presence broadcast about one occupant. */
interface PresenceBroadcast {
  type?: 'unavailable';
  /** The presence payload (show, status, ...): the occupant's own by default. */
  children?: Element[];
  /** Item details beyond affiliation and role (a new nick, an actor, a reason). */
  item?: Partial<ItemDetails>;
  /** Status codes for every recipient. */
  codes?: number[];
  /** Status codes for the occupant itself (110 comes with them). */
  selfCodes?: number[];
  /** Inside <x/> after the item (<destroy/>). */
  extra?: Element;
  /** The occupant's own sessions that get it (110): all of them by default. */
  selfTo?: Iterable<Recipient>;
  /** Whether the other occupants get it (default true). */
  others?: boolean;
  /** The 'id' of the presence that caused it, kept on the self-presence. */
  selfId?: string;
}

export class Room {
  readonly str: string;
  config: RoomConfig;
  readonly affiliations = new Map<string, AffiliationEntry>();
  readonly occupants = new Map<string, Occupant>();
  /** Occupants by the real full JID of each of their sessions. */
  readonly bySession = new Map<string, Occupant>();
  subject: SubjectState = { text: '' };
  readonly history: History;
  /** A new room stays locked until its owner configures it (§10.1: status 201); see lock(). */
  locked = false;
  private lockTimer: NodeJS.Timeout | undefined;
  destroyed = false;
  salt: string;
  createdAt: number;
  /** IQs forwarded between occupants (XEP-0045 §7.5 on IQs), by the id the room gave them. */
  readonly forwarded = new Map<string, { from: string; id: string; target: string; occupant: string; timer: NodeJS.Timeout }>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly jid: Jid,
    readonly service: RoomService,
    options: { config?: RoomConfig; salt?: string; createdAt?: number } = {},
  ) {
    this.str = jid.toString();
    this.config = options.config ?? defaultConfig(service.limits);
    this.history = new History(this.config.historyLength);
    this.salt = options.salt ?? randomBytes(16).toString('base64url');
    this.createdAt = options.createdAt ?? Date.now();
  }

  /**
   * Locks a new room (§10.1.1): only its owner may enter or see it until it is configured.
   * With `autoUnlockMs` > 0 it opens by itself, with the configuration it has (the default),
   * that long after, for clients that never configure a room they create.
   */
  lock(autoUnlockMs: number): void {
    this.locked = true;
    if (autoUnlockMs <= 0) return;
    this.lockTimer = setTimeout(() => void this.run(async () => this.unlock('timeout')).catch(() => {}), autoUnlockMs);
    this.lockTimer.unref();
  }

  /** Whether the room, locked now, opens by itself (on its owner's first message too). */
  get unlocksBySelf(): boolean {
    return this.lockTimer !== undefined;
  }

  /** Opens a locked room (nothing when it is not locked, or gone). */
  unlock(why: UnlockReason): void {
    clearTimeout(this.lockTimer);
    this.lockTimer = undefined;
    if (!this.locked || this.destroyed) return;
    this.locked = false;
    this.service.unlocked(this, why);
  }

  /** Runs `fn` after everything queued before it; the room's stanzas are handled one at a time. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn);
    this.queue = result.catch(() => {});
    return result;
  }

  get log(): Logger {
    return this.service.log;
  }

  // --- affiliations and roles ------------------------------------------------------------------

  affiliationOf(bare: Jid): Affiliation {
    if (this.service.isServiceAdmin(bare)) return 'owner';
    const entry = this.affiliations.get(bare.toString()) ?? (bare.local !== '' ? this.affiliations.get(bare.domain) : undefined);
    return entry?.affiliation ?? 'none';
  }

  owners(): number {
    let n = 0;
    for (const e of this.affiliations.values()) if (e.affiliation === 'owner') n++;
    return n;
  }

  /** The occupant a real full JID is in the room as, if any. */
  occupantOf(real: Jid | string): Occupant | undefined {
    return this.bySession.get(typeof real === 'string' ? real : real.toString());
  }

  /** Whether `viewer` sees occupants' real JIDs (§5.1.2: moderators, or anyone in non-anonymous rooms). */
  seesRealJids(viewer: Occupant): boolean {
    return this.config.whois === 'anyone' || viewer.role === 'moderator';
  }

  /** The nick reserved for another user, if `nick` is one (§7.10). */
  reservedBy(nick: string): string | undefined {
    for (const [jid, entry] of this.affiliations) if (entry.nick === nick) return jid;
    return undefined;
  }

  // --- presence out ----------------------------------------------------------------------------

  itemOf(occ: Occupant): ItemDetails {
    return { affiliation: this.affiliationOf(occ.bare), role: occ.role };
  }

  /** The occupant's presence as `viewer` sees it (its own presence when entering: §7.2.3). */
  presenceOf(occ: Occupant, viewer: Occupant): Element {
    const item = this.itemOf(occ);
    if (this.seesRealJids(viewer) || viewer === occ) item.jid = occ.realJid;
    return xml('presence', { from: occ.jid.toString() }, ...occ.presence, userX(item, []), xml('occupant-id', { xmlns: MUC.OCCUPANT_ID, id: occ.occupantId }));
  }

  /**
   * Tells the room about an occupant (§7.2.3, §7.6, §7.7, §7.14, §8, §9): one serialisation for
   * those who see real JIDs, one for those who do not, one for the occupant itself (110).
   */
  async broadcastPresence(occ: Occupant, b: PresenceBroadcast = {}): Promise<void> {
    const base = { ...this.itemOf(occ), ...b.item };
    const children = b.children ?? occ.presence;
    const from = occ.jid;
    const make = (jid: string | undefined, codes: number[], id?: string) =>
      new Prepared(
        xml(
          'presence',
          { from: from.toString(), type: b.type, id },
          ...children,
          userX({ ...base, jid }, codes, b.extra),
          xml('occupant-id', { xmlns: MUC.OCCUPANT_ID, id: occ.occupantId }),
        ),
      );
    const pending: Promise<void>[] = [];
    const sender = this.service.sender;
    const self = make(occ.realJid, [STATUS.SELF, ...(b.codes ?? []), ...(b.selfCodes ?? [])], b.selfId);
    sender.many(self, from, b.selfTo ?? occ.sessions.values(), pending);
    if (b.others !== false) {
      let withJid: Prepared | undefined;
      let withoutJid: Prepared | undefined;
      for (const other of this.occupants.values()) {
        if (other === occ) continue;
        const prepared = this.seesRealJids(other) ? (withJid ??= make(occ.realJid, b.codes ?? [])) : (withoutJid ??= make(undefined, b.codes ?? []));
        sender.many(prepared, from, other.sessions.values(), pending);
      }
    }
    await Promise.all(pending);
  }

  /** A message from the room itself (status codes of a configuration change, §10.2.1). */
  async broadcastFromRoom(children: Element[]): Promise<void> {
    const prepared = new Prepared(xml('message', { from: this.str, type: 'groupchat', id: randomBytes(9).toString('base64url') }, ...children));
    await this.fanOut(prepared, this.jid);
  }

  /** Sends a prepared stanza to every session of every occupant. */
  async fanOut(prepared: Prepared, from: Jid, except?: Occupant): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const occ of this.occupants.values()) {
      if (occ !== except) this.service.sender.many(prepared, from, occ.sessions.values(), pending);
    }
    await Promise.all(pending);
  }

  // --- stanzas in (presence.ts, messages.ts, forwarding.ts) ------------------------------------

  /** Presence to room@service/nick: entering, changes, leaving. */
  presence(stanza: Element, from: Jid, to: Jid, created = false): Promise<void> {
    return presence(this, stanza, from, to, created);
  }

  /** A message to the room or to an occupant. Throws StanzaError for the router to bounce. */
  message(stanza: Element, from: Jid, to: Jid): Promise<void> {
    return message(this, stanza, from, to);
  }

  /** An IQ to room@service/nick. */
  occupantIq(stanza: Element, from: Jid, to: Jid): Promise<void> {
    return occupantIq(this, stanza, from, to);
  }

  /** A session of an occupant is gone (its stream closed without a goodbye to the room). */
  sessionGone(real: string): Promise<void> {
    return sessionGone(this, real);
  }

  /**
   * Takes an occupant (all its sessions) out of the room and tells everyone, the occupant
   * included (kick 307, ban 301, affiliation 321, members-only 322, shutdown 332, destroy).
   */
  async removeOccupant(occ: Occupant, b: PresenceBroadcast): Promise<void> {
    this.occupants.delete(occ.nick);
    for (const key of occ.sessions.keys()) this.bySession.delete(key);
    occ.role = 'none';
    // Out of the map already: the others get it from the room, the occupant's sessions as self.
    await this.broadcastPresence(occ, { children: [], ...b, type: 'unavailable', item: { role: 'none', ...b.item } });
    this.vanishIfEmpty();
  }

  /** A temporary room goes with its last occupant; a persistent one stays. */
  vanishIfEmpty(): void {
    if (this.occupants.size === 0 && !this.config.persistent && !this.destroyed) {
      this.destroyed = true;
      clearTimeout(this.lockTimer);
      this.service.gone(this);
    }
  }

  // --- changes made by moderators, admins and owners --------------------------------------------

  /** Sets an occupant's role (§8.2 kick, §8.3-8.4 voice, §9.6-9.7 moderator); checks are the caller's. */
  async setRole(occ: Occupant, role: Role, actor: Occupant | undefined, reason: string | undefined): Promise<void> {
    if (role === 'none') {
      await this.removeOccupant(occ, { codes: [STATUS.KICKED], item: { actor: actor?.nick, reason } });
      return;
    }
    if (occ.role === role) return;
    occ.role = role;
    await this.broadcastPresence(occ, { item: { actor: actor?.nick, reason } });
  }

  /**
   * Sets a user's affiliation (§9, §10); checks are the caller's. Occupants of that user get
   * the role that goes with it, or leave the room (ban 301; members-only 321).
   */
  async setAffiliation(jid: string, affiliation: Affiliation, actor: Occupant | undefined, reason: string | undefined, nick?: string): Promise<void> {
    const entry: AffiliationEntry | undefined = affiliation === 'none' ? undefined : { affiliation, reason, nick: nick ?? this.affiliations.get(jid)?.nick };
    if (this.config.persistent) await this.service.saveAffiliation(this, jid, entry);
    if (entry) this.affiliations.set(jid, entry);
    else this.affiliations.delete(jid);
    const affected = [...this.occupants.values()].filter((o) => o.bare.toString() === jid || (!jid.includes('@') && o.bare.domain === jid));
    for (const occ of affected) {
      const effective = this.affiliationOf(occ.bare);
      if (effective === 'outcast') {
        await this.removeOccupant(occ, { codes: [STATUS.BANNED], item: { affiliation: 'outcast', actor: actor?.nick, reason } });
      } else if (this.config.membersOnly && effective === 'none') {
        await this.removeOccupant(occ, { codes: [STATUS.REMOVED_AFFILIATION], item: { affiliation: 'none', actor: actor?.nick, reason } });
      } else {
        occ.role = roleAfterAffiliation(occ.role, effective, this.config.moderated);
        await this.broadcastPresence(occ, { item: { actor: actor?.nick, reason } });
      }
    }
  }

  /** A new configuration (§10.2): notifications (104, 170-173), members-only removals (322). */
  async applyConfig(next: RoomConfig, actor: Jid): Promise<void> {
    const previous = this.config;
    const wasLocked = this.locked;
    this.config = next;
    try {
      if (next.persistent) await this.service.save(this);
      else if (previous.persistent) await this.service.forget(this);
    } catch (err) {
      this.config = previous;
      throw err;
    }
    this.unlock('configured');
    this.history.resize(next.historyLength);
    this.log.debug({ room: this.str, by: actor.toString() }, 'room configured');
    if (!wasLocked) {
      const codes: number[] = [STATUS.CONFIG_CHANGED];
      if (previous.whois !== next.whois) codes.push(next.whois === 'anyone' ? STATUS.NOW_NON_ANONYMOUS : STATUS.NOW_SEMI_ANONYMOUS);
      if (previous.logging !== next.logging && this.service.archiving) codes.push(next.logging ? STATUS.LOGGING_ON : STATUS.LOGGING_OFF);
      await this.broadcastFromRoom([xml('x', { xmlns: MUC.USER }, ...codes.map((code) => xml('status', { code: String(code) })))]);
    }
    if (next.membersOnly && !previous.membersOnly) {
      for (const occ of [...this.occupants.values()]) {
        if (this.affiliationOf(occ.bare) === 'none') await this.removeOccupant(occ, { codes: [STATUS.REMOVED_MEMBERS_ONLY] });
      }
    }
    this.vanishIfEmpty();
  }

  /** §10.9: the room goes; occupants are told, with the alternate venue when given. */
  async destroy(alternate: string | undefined, reason: string | undefined, password: string | undefined): Promise<void> {
    this.destroyed = true;
    clearTimeout(this.lockTimer);
    if (this.config.persistent) await this.service.forget(this);
    const destroy = xml('destroy', { jid: alternate }, reason !== undefined ? xml('reason', {}, reason) : null, password !== undefined ? xml('password', {}, password) : null);
    for (const occ of [...this.occupants.values()]) {
      await this.removeOccupant(occ, { item: { affiliation: 'none', role: 'none' }, extra: destroy });
    }
    this.service.gone(this);
  }

  /** The server is stopping: everyone leaves with 332. */
  async shutdown(): Promise<void> {
    clearTimeout(this.lockTimer);
    for (const occ of [...this.occupants.values()]) {
      this.occupants.delete(occ.nick);
      for (const key of occ.sessions.keys()) this.bySession.delete(key);
      await this.broadcastPresence(occ, { type: 'unavailable', children: [], item: { role: 'none' }, codes: [STATUS.SHUTDOWN] });
    }
  }

  /** A mediated invitation or decline, a voice request: for invites.ts. */
  send(stanza: Element): void {
    this.service.sender.send(stanza);
  }
}
