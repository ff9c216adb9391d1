// MUC in a cluster: each room is served by one node at a time, the holder of the room's lease in
// Redis. A stanza to a room, on whatever node it arrives, is handled there when this node holds
// the lease, else written to the holder's inbox (an entry of kind `muc:<service>`, handed to the
// service there, never to sessions); a room nobody holds is taken by the node the stanza came to,
// which loads it from storage (persistent) or creates it (a join).
//
// Keys (under the live state's prefix): `muc-lease:<room>` (the holder's node id, expiring after
// three heartbeat intervals, renewed every interval while the room is in the holder's memory),
// `muc-occupants:<room>` (the holder's occupants: real full JID -> nick and affiliation),
// `muc-rooms:<service>:<node>` (the rooms a node took: where the reaper looks after it died).
//
// A node that dies loses its rooms' occupants (they were in its memory only): the node that
// cleans up after it (Cluster.onNodeGone), or the node that takes a lease whose occupants were
// never told, sends each listed occupant the unavailable presence of a service shutting down
// (XEP-0045 §7.2.7 / status 332), so that clients join again; the room comes back from storage
// on the next node a stanza reaches. Temporary rooms of a dead node are gone.
import { xml, type Element } from '@xmpp/xml';
import type { Redis } from 'ioredis';
import { entryStanza, type Cluster, type Fields } from '../../src/cluster/cluster.js';
import { tryParseJid, type Jid } from '../../src/jid.js';
import type { Logger } from '../../src/log.js';
import type { Router } from '../../src/router/router.js';
import type { LocalSessions } from '../../src/sessions/local-sessions.js';
import { StanzaError } from '../../src/stream/errors.js';
import { MUC, STATUS } from './ns.js';
import type { Room } from './room.js';
import type { MucService, RoomCluster } from './service.js';

/** How many times a stanza may be forwarded between nodes (leases moving meanwhile) before it bounces. */
const MAX_HOPS = 3;

// Takes the lease unless another node holds it (ARGV[4] = '0': only looks). Returns {1} (held
// already), {0, holder}, {-1} (free, not taken) or {2, [full, json, ...]}: taken, with the
// occupants a previous holder left behind (never told the room went).
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return {1} end
if cur then return {0, cur} end
if ARGV[4] == '0' then return {-1} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
local stale = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
return {2, stale}`;

// Renews the leases KEYS still held by ARGV[1]; returns the indexes (1-based) of those lost.
const RENEW = `
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]) else table.insert(lost, i) end
end
return lost`;

// A dead (or stopping) node's room: its lease is released unless another node took it since
// (which told the occupants then); returns the occupants to tell, or nil.
const RELEASE = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return nil end
if cur then redis.call('DEL', KEYS[1]) end
local stale = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
return stale`;

export interface RoomLeasesDeps {
  redis: Redis;
  prefix: string;
  cluster: Cluster;
  heartbeatMs: number;
  service: MucService;
  router: Router;
  sessions: LocalSessions;
  log: Logger;
}

export class RoomLeases implements RoomCluster {
  private readonly redis: Redis;
  private readonly me: string;
  private readonly ttl: number;
  private readonly kind: string;
  /** Rooms this node holds (by local part): until when the lease is surely still ours. */
  private readonly held = new Map<string, number>();
  /** Other nodes' rooms, cached briefly. */
  private readonly owners = new Map<string, { node: string; until: number }>();
  /** Lookups in Redis under way, per room: later stanzas to the room wait for them (their order). */
  private readonly pending = new Map<string, Promise<void>>();
  /** The occupants of each room held here as last written to Redis (real full JID -> JSON). */
  private readonly published = new Map<string, Map<string, string>>();
  private readonly undo: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly deps: RoomLeasesDeps) {
    this.redis = deps.redis;
    this.me = deps.cluster.id;
    this.ttl = deps.heartbeatMs * 3;
    this.kind = `muc:${deps.service.domain}`;
  }

  start(): void {
    this.undo.push(this.deps.cluster.onEntry(this.kind, (fields) => this.received(fields)));
    this.undo.push(this.deps.cluster.onNodeGone((node) => this.nodeGone(node)));
    this.timer = setInterval(() => void this.renew(), this.deps.heartbeatMs);
    this.timer.unref();
  }

  private key(local: string): string {
    return `${this.deps.prefix}muc-lease:${local}@${this.deps.service.domain}`;
  }

  private occupantsKey(local: string): string {
    return `${this.deps.prefix}muc-occupants:${local}@${this.deps.service.domain}`;
  }

  private roomsKey(node: string): string {
    return `${this.deps.prefix}muc-rooms:${this.deps.service.domain}:${node}`;
  }

  // --- routing ----------------------------------------------------------------------------------

  route(stanza: Element, from: Jid, to: Jid, hops = 0): Promise<void> {
    const local = to.local;
    if (!this.pending.has(local)) {
      // The common case, without Redis: a room held here, or one whose holder is cached.
      const node = this.known(local);
      if (node === this.me) return this.deps.service.handleLocal(stanza, from, to);
      if (node !== undefined) return this.forward(node, stanza, from, to, hops);
    }
    const previous = this.pending.get(local) ?? Promise.resolve();
    const done = previous.then(() => this.lookup(stanza, from, to, hops));
    const settled = done.then(
      () => {},
      () => {},
    );
    this.pending.set(local, settled);
    void settled.then(() => {
      if (this.pending.get(local) === settled) this.pending.delete(local);
    });
    return done;
  }

  private known(local: string): string | undefined {
    const now = Date.now();
    if ((this.held.get(local) ?? 0) > now) return this.me;
    const owner = this.owners.get(local);
    if (owner && owner.until > now) return owner.node;
    return undefined;
  }

  private async lookup(stanza: Element, from: Jid, to: Jid, hops: number): Promise<void> {
    const local = to.local;
    const known = this.known(local);
    if (known === this.me) return this.deps.service.handleLocal(stanza, from, to);
    if (known !== undefined) return this.forward(known, stanza, from, to, hops);
    const reply = (await this.redis.eval(
      ACQUIRE,
      3,
      this.key(local),
      this.occupantsKey(local),
      this.roomsKey(this.me),
      this.me,
      String(this.ttl),
      local,
      this.stopping ? '0' : '1',
    )) as [number, unknown?];
    const now = Date.now();
    if (reply[0] === 0) {
      const node = String(reply[1]);
      this.owners.set(local, { node, until: now + this.deps.heartbeatMs });
      // A copy left here from when this node held it (its lease lapsed) is stale.
      this.drop(local);
      return this.forward(node, stanza, from, to, hops);
    }
    if (reply[0] === -1) {
      // This node is stopping and the room is free: back to the sender's node (it forwarded
      // before it heard this one left), which takes the room; else the sender tries again later.
      const back = this.deps.sessions.getRemote(from)?.node;
      if (back === undefined || hops >= MAX_HOPS) throw new StanzaError('service-unavailable', 'the server is shutting down', 'wait');
      this.deps.cluster.post(back, { t: this.kind, from: from.toString(), to: to.toString(), hops: String(hops + 1), fresh: '1', xml: stanza.toString() }, stanza);
      return;
    }
    this.owners.delete(local);
    this.held.set(local, now + this.ttl - this.deps.heartbeatMs);
    if (reply[0] === 2) {
      const stale = reply[1] as string[];
      if (stale.length > 0) this.tellGone(local, stale);
      this.deps.log.debug({ room: `${local}@${this.deps.service.domain}` }, 'room lease taken');
    }
    await this.deps.service.load(local);
    return this.deps.service.handleLocal(stanza, from, to);
  }

  private forward(node: string, stanza: Element, from: Jid, to: Jid, hops: number): Promise<void> {
    if (hops >= MAX_HOPS) {
      this.deps.log.warn({ room: to.bare.toString(), node }, 'muc: a stanza went from node to node while the room moved; bounced');
      throw new StanzaError('resource-constraint', 'the room is moving between nodes; try again', 'wait');
    }
    this.deps.cluster.post(node, { t: this.kind, from: from.toString(), to: to.toString(), hops: String(hops + 1), xml: stanza.toString() }, stanza);
    return Promise.resolve();
  }

  /** An entry another node wrote to this node's inbox: routed again here (the lease may have moved). */
  private async received(fields: Fields): Promise<void> {
    if (fields.left) {
      // A node stopped and released its rooms: what is cached of it is stale.
      for (const [local, owner] of this.owners) if (owner.node === fields.left) this.owners.delete(local);
      return;
    }
    const from = tryParseJid(fields.from ?? '');
    const to = tryParseJid(fields.to ?? '');
    const stanza = entryStanza(fields, this.deps.log, 'muc');
    if (!stanza) return;
    if (!from || !to) return;
    // Sent back by a node that stopped: what is cached of the room is stale.
    if (fields.fresh) this.owners.delete(to.local);
    try {
      await this.route(stanza, from, to, Number(fields.hops) || 0);
    } catch (err) {
      if (!(err instanceof StanzaError)) this.deps.log.error({ err, room: to.bare.toString() }, 'muc: a forwarded stanza failed; the sender gets an error');
      this.deps.router.bounce(stanza, err instanceof StanzaError ? err : new StanzaError('internal-server-error', 'the stanza could not be handled'));
    }
  }

  // --- what the service tells ------------------------------------------------------------------

  changed(room: Room): void {
    const local = room.jid.local;
    const before = this.published.get(local) ?? new Map<string, string>();
    const now = new Map<string, string>();
    for (const [full, occ] of room.bySession) now.set(full, JSON.stringify({ n: occ.nick, a: room.affiliationOf(occ.bare) }));
    const add: string[] = [];
    const remove: string[] = [];
    for (const [full, value] of now) if (before.get(full) !== value) add.push(full, value);
    for (const full of before.keys()) if (!now.has(full)) remove.push(full);
    if (add.length === 0 && remove.length === 0) return;
    this.published.set(local, now);
    const m = this.redis.multi();
    if (add.length > 0) m.hset(this.occupantsKey(local), ...add);
    if (remove.length > 0) m.hdel(this.occupantsKey(local), ...remove);
    m.exec().catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message, room: room.str }, 'muc: writing the occupants of a room to Redis failed'));
  }

  gone(room: Room): void {
    // The lease lapses by itself (it is renewed for rooms in memory only).
    this.published.delete(room.jid.local);
    this.redis.del(this.occupantsKey(room.jid.local)).catch(() => {});
  }

  /** A room whose lease another node has now: forgotten here, silently (that node told its occupants). */
  private drop(local: string): void {
    this.held.delete(local);
    this.published.delete(local);
    const room = this.deps.service.rooms.get(local);
    if (room) {
      this.deps.service.rooms.delete(local);
      this.deps.log.warn({ room: room.str }, 'muc: another node serves this room now; the copy here is dropped');
    }
  }

  // --- leases over time -------------------------------------------------------------------------

  private async renew(): Promise<void> {
    if (this.stopping) return;
    const now = Date.now();
    const rooms = [...this.held.keys()].filter((local) => this.deps.service.rooms.has(local));
    for (const [local, until] of this.held) if (until <= now && !this.deps.service.rooms.has(local)) this.held.delete(local);
    for (const [local, owner] of this.owners) if (owner.until <= now) this.owners.delete(local);
    if (rooms.length === 0) return;
    try {
      const lost = (await this.redis.eval(RENEW, rooms.length, ...rooms.map((r) => this.key(r)), this.me, String(this.ttl))) as number[];
      const gone = new Set(lost.map((i) => rooms[i - 1]));
      for (const local of rooms) {
        if (gone.has(local)) this.drop(local);
        else this.held.set(local, now + this.ttl - this.deps.heartbeatMs);
      }
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'muc: renewing the room leases failed');
    }
  }

  /** A dead node's rooms become free; their occupants are told the room went (332). */
  private async nodeGone(node: string): Promise<void> {
    const set = this.roomsKey(node);
    for (const local of await this.redis.smembers(set)) {
      const stale = (await this.redis.eval(RELEASE, 2, this.key(local), this.occupantsKey(local), node)) as string[] | null;
      if (stale && stale.length > 0) {
        this.deps.log.info({ room: `${local}@${this.deps.service.domain}`, dead: node, occupants: stale.length / 2 }, 'muc: the node of a room died; its occupants are told (332)');
        this.tellGone(local, stale);
      }
    }
    await this.redis.del(set);
  }

  /** §7.2.7 / 332: an occupant's session is out of a room that went with its node. */
  private tellGone(local: string, flat: string[]): void {
    for (let i = 0; i + 1 < flat.length; i += 2) {
      let nick: string, affiliation: string;
      try {
        ({ n: nick, a: affiliation } = JSON.parse(flat[i + 1]) as { n: string; a: string });
      } catch {
        continue;
      }
      const stanza = xml(
        'presence',
        { from: `${local}@${this.deps.service.domain}/${nick}`, to: flat[i], type: 'unavailable' },
        xml('x', { xmlns: MUC.USER }, xml('item', { affiliation, role: 'none' }), xml('status', { code: String(STATUS.SELF) }), xml('status', { code: String(STATUS.SHUTDOWN) })),
      );
      void this.deps.router.route(stanza);
    }
  }

  /**
   * Graceful stop, after the rooms shut down (their occupants got 332): this node's leases are
   * free at once. What still comes meanwhile goes to the rooms' new nodes, or bounces (wait).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    try {
      for (const local of this.held.keys()) await this.redis.eval(RELEASE, 2, this.key(local), this.occupantsKey(local), this.me);
      await this.redis.del(this.roomsKey(this.me));
      // The other nodes forget this one as a room's node (else they would forward to it a little longer).
      for (const { node, alive } of await this.deps.cluster.nodes()) if (alive && node !== this.me) this.deps.cluster.post(node, { t: this.kind, left: this.me });
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'muc: releasing the room leases failed; they expire');
    }
    this.held.clear();
  }

  /** The module unloads. */
  close(): void {
    this.stopping = true;
    clearInterval(this.timer);
    for (const u of this.undo.splice(0)) u();
  }
}
