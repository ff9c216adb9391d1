// The nodes of a cluster sharing Redis ([live_state] backend = "redis"): heartbeats, a copy of
// the other nodes' sessions, inboxes between nodes, and the clean-up after a node that died.
//
// Keys (under the live state's prefix): `nodes` (the set of node ids), `node:<id>` (its
// heartbeat, expiring after three intervals), `inbox:<id>` (a stream read by the consumer group
// `nodes`: at-least-once, acknowledged once its stanza is delivered, stored or bounced),
// `reap:<id>` (the lock of the node that cleans up after a dead one). The session directory is
// the live state's (src/sessions/redis-live-state.ts), whose changes come on `directory`.
import { xml, type Element } from '@xmpp/xml';
import type { Redis } from 'ioredis';
import { tryParseJid, type Jid } from '../jid.js';
import type { Logger } from '../log.js';
import type { Host } from '../module-api/host.js';
import type { Router } from '../router/router.js';
import type { SessionDirectory, SessionRecord } from '../sessions/live-state.js';
import type { LocalSessions } from '../sessions/local-sessions.js';
import { RemoteSession, type RemoteLink } from '../sessions/remote-session.js';
import type { Session } from '../sessions/session.js';
import { StanzaError, StreamError, type StreamErrorCondition } from '../stream/errors.js';
import { parseElement } from '../xml/parse.js';

const GROUP = 'nodes';

export interface ClusterNode {
  node: string;
  /** Its heartbeat is current. */
  alive: boolean;
  /** Sessions bound on it, as of its last heartbeat. */
  sessions?: number;
}

export interface ClusterDeps {
  redis: Redis;
  prefix: string;
  node: string;
  heartbeatMs: number;
  directory: SessionDirectory;
  sessions: LocalSessions;
  router: Router;
  hosts: ReadonlyMap<string, Host>;
  log: Logger;
}

export type Fields = Record<string, string>;

/** A module's own kind of inbox entry (its `t` field), handled by the module on the receiving node. */
export type EntryHandler = (fields: Fields) => Promise<void>;

export class Cluster implements RemoteLink {
  private readonly redis: Redis;
  private readonly p: string;
  private readonly me: string;
  private sub: Redis | undefined;
  private reader: Redis | undefined;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  /** A heartbeat went out already. */
  private beating = false;
  private reading: Promise<void> | undefined;
  private readonly kinds = new Map<string, EntryHandler>();
  private readonly goneHandlers = new Set<(node: string) => Promise<void>>();

  constructor(private readonly deps: ClusterDeps) {
    this.redis = deps.redis;
    this.p = deps.prefix;
    this.me = deps.node;
    // Sessions of a dead node that ended, sent by the node that cleaned up after it.
    this.kinds.set('gone', (fields) => this.othersGone(fields));
  }

  private inbox(node: string): string {
    return `${this.p}inbox:${node}`;
  }

  async start(): Promise<void> {
    const { sessions, log } = this.deps;
    // Another node's session copies follow the directory's changes from now on ...
    this.sub = this.redis.duplicate();
    this.sub.on('error', () => {});
    this.sub.on('message', (_channel: string, message: string) => this.onDirectoryChange(message));
    await this.sub.subscribe(`${this.p}directory`);
    // ... after a first copy of the whole directory.
    await this.loadDirectory();
    // A node that comes back under the same id after a crash cleans up after itself first.
    if ((await this.redis.scard(`${this.p}node-sessions:${this.me}`)) > 0 || (await this.redis.exists(this.inbox(this.me))) > 0) {
      log.warn('cluster: this node was not stopped cleanly last time; its sessions and inbox are cleaned up');
      await this.reap(this.me);
    }
    await this.ensureGroup(this.me);
    await this.heartbeat();
    sessions.clustered = { onClaimed: (previous, session) => this.claimed(previous, session) };
    this.reader = this.redis.duplicate();
    this.reader.on('error', () => {});
    this.reading = this.readLoop(this.reader);
    this.timers.push(setInterval(() => void this.heartbeat(), this.deps.heartbeatMs));
    this.timers.push(setInterval(() => void this.watch(), this.deps.heartbeatMs * 2));
    for (const t of this.timers) t.unref();
    log.info({ nodes: (await this.nodes()).filter((n) => n.alive).map((n) => n.node) }, 'cluster: joined');
  }

  /** Graceful stop (after this node's sessions are closed): a live node drains what is left in the inbox. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.deps.sessions.clustered = undefined;
    this.reader?.disconnect();
    await this.reading;
    this.sub?.disconnect();
    try {
      // Nothing left in the inbox or the directory: this node leaves the cluster now; else a live node takes
      // over what is left once the heartbeat has expired.
      if ((await this.redis.xlen(this.inbox(this.me))) === 0 && (await this.redis.scard(`${this.p}node-sessions:${this.me}`)) === 0) {
        await this.redis.multi().srem(`${this.p}nodes`, this.me).del(this.inbox(this.me)).exec();
      }
      await this.redis.del(`${this.p}node:${this.me}`);
    } catch {
      // Redis is gone: the other nodes clean up after this one.
    }
  }

  /** Every node known to the cluster, with its session count. */
  async nodes(): Promise<ClusterNode[]> {
    const ids = (await this.redis.smembers(`${this.p}nodes`)).sort();
    if (ids.length === 0) return [];
    const beats = await this.redis.mget(ids.map((id) => `${this.p}node:${id}`));
    return ids.map((node, i) => {
      const beat = beats[i];
      return beat ? { node, alive: true, sessions: (JSON.parse(beat) as { sessions: number }).sessions } : { node, alive: false };
    });
  }

  /** This node's id. */
  get id(): string {
    return this.me;
  }

  // --- extensions: modules' own inbox entries and clean-ups -------------------------------------

  /** Entries of kind `t` in this node's inbox (or a dead node's being drained here) go to `handler`; returns the undo. */
  onEntry(t: string, handler: EntryHandler): () => void {
    if (t === 'stanza' || t === 'close' || this.kinds.has(t)) throw new Error(`the inbox entry kind ${t} is taken`);
    this.kinds.set(t, handler);
    return () => void this.kinds.delete(t);
  }

  /** Writes an entry of a module's own kind (fields.t) to a node's inbox; `stanza` as for forward(). */
  post(node: string, fields: Fields, stanza?: Element): void {
    this.send(node, fields, stanza);
  }

  /** Runs `handler` for a dead node (this one too, after a crash) while it is cleaned up; returns the undo. */
  onNodeGone(handler: (node: string) => Promise<void>): () => void {
    this.goneHandlers.add(handler);
    return () => void this.goneHandlers.delete(handler);
  }

  // --- RemoteLink: what a RemoteSession sends to its node --------------------------------------

  forward(node: string, to: Jid, stanza: Element): void {
    this.send(node, { t: 'stanza', to: to.toString(), xml: stanza.toString() }, stanza);
  }

  closeRemote(node: string, jid: Jid, error?: StreamError): void {
    this.send(node, { t: 'close', to: jid.toString(), condition: error?.condition ?? '', text: error?.text ?? '' });
  }

  private send(node: string, fields: Fields, stanza?: Element): void {
    const added = this.redis
      .xadd(this.inbox(node), '*', ...Object.entries(fields).flat())
      .then(() => {})
      .catch((err: unknown) => {
        this.deps.log.error({ err: (err as Error).message, to: node }, 'cluster: could not write to the inbox of a node; the sender gets an error');
        // Never a silent loss: the sender of a stanza that did not reach the other node is told.
        if (stanza) this.deps.router.bounce(stanza, new StanzaError('resource-constraint', "the recipient's node could not be reached", 'wait'));
      });
    // The sender's stanza counts as handled (XEP-0198) once it is in the other node's inbox.
    if (stanza) this.deps.router.holdUntil(stanza, added);
  }

  // --- the directory's copy ---------------------------------------------------------------------

  private remoteOf(record: SessionRecord): RemoteSession | undefined {
    const jid = tryParseJid(record.jid);
    if (!jid) return undefined;
    let presence: Element | undefined;
    if (record.available && record.presence) {
      try {
        presence = parseElement(record.presence);
      } catch {
        presence = xml('presence');
      }
    } else if (record.available) presence = xml('presence');
    const session = new RemoteSession(jid, record.node, record.priority, presence, this, this.deps.log, record);
    for (const name of record.flags ?? []) {
      const key = this.deps.sessions.sharedFlags.get(name);
      if (key) session.data.set(key, true);
    }
    return session;
  }

  private onDirectoryChange(message: string): void {
    let change: { op: 'put'; record: SessionRecord } | { op: 'remove'; jid: string; node: string };
    try {
      change = JSON.parse(message) as typeof change;
    } catch {
      return;
    }
    if (change.op === 'remove') {
      const jid = tryParseJid(change.jid);
      if (jid) this.deps.sessions.removeRemote(jid, change.node);
      return;
    }
    if (change.record.node === this.me) return;
    const session = this.remoteOf(change.record);
    if (session) this.deps.sessions.putRemote(session);
  }

  private async loadDirectory(): Promise<void> {
    for (const node of await this.redis.smembers(`${this.p}nodes`)) {
      if (node === this.me) continue;
      for (const full of await this.redis.smembers(`${this.p}node-sessions:${node}`)) {
        const jid = tryParseJid(full);
        const raw = jid && (await this.redis.hget(`${this.p}sessions:${jid.bare.toString()}`, full));
        if (!raw) continue;
        const record = JSON.parse(raw) as SessionRecord;
        const session = record.node === node ? this.remoteOf(record) : undefined;
        if (session && !this.deps.sessions.getRemote(session.jid)) this.deps.sessions.putRemote(session);
      }
    }
  }

  /** This node took a full JID another node held: that node ends its session with <conflict/>. */
  private claimed(previous: SessionRecord, session: Session & { jid: Jid }): void {
    this.deps.log.info({ jid: previous.jid, from: previous.node }, 'cluster: resource taken over from another node');
    this.deps.sessions.removeRemote(session.jid, previous.node);
    this.closeRemote(previous.node, session.jid, new StreamError('conflict', 'replaced by a new session with the same resource'));
  }

  // --- heartbeats and dead nodes --------------------------------------------------------------

  private async heartbeat(): Promise<void> {
    try {
      const beat = JSON.stringify({ sessions: this.deps.sessions.size, at: Date.now() });
      const previous = await this.redis.set(`${this.p}node:${this.me}`, beat, 'PX', this.deps.heartbeatMs * 3, 'GET');
      await this.redis.sadd(`${this.p}nodes`, this.me);
      if (previous === null && this.beating && !this.stopping) {
        // Silent too long (a pause, Redis lost): other nodes may have taken this node for dead
        // and removed its sessions from the directory. They are published again.
        this.deps.log.warn('cluster: this node missed its heartbeats; its sessions are published again');
        await this.ensureGroup(this.me);
        for (const session of this.deps.sessions.all()) await this.deps.sessions.publish(session);
      }
      this.beating = true;
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'cluster: heartbeat failed');
    }
  }

  /** Finds nodes whose heartbeat expired; one live node (the lock's holder) cleans up after each. */
  private async watch(): Promise<void> {
    if (this.stopping) return;
    try {
      for (const { node, alive } of await this.nodes()) {
        if (alive || node === this.me) continue;
        const locked = await this.redis.set(`${this.p}reap:${node}`, this.me, 'PX', 60_000, 'NX');
        if (locked !== 'OK') continue;
        this.deps.log.warn({ dead: node }, 'cluster: a node stopped sending heartbeats; its sessions end and its inbox is routed again');
        await this.reap(node);
      }
    } catch (err) {
      if (!this.stopping) this.deps.log.warn({ err: (err as Error).message }, 'cluster: checking the other nodes failed');
    }
  }

  /**
   * A dead node: its sessions leave the directory (contacts see them unavailable once), every
   * live node fires 'session/closed' for them, its inbox is handled here.
   */
  private async reap(node: string): Promise<void> {
    const { directory, hosts } = this.deps;
    const ended: SessionRecord[] = [];
    for (const full of await this.redis.smembers(`${this.p}node-sessions:${node}`)) {
      const jid = tryParseJid(full);
      if (!jid) continue;
      const raw = await this.redis.hget(`${this.p}sessions:${jid.bare.toString()}`, full);
      await directory.remove(full, node);
      const record = raw ? (JSON.parse(raw) as SessionRecord) : undefined;
      if (!record || record.node !== node) continue;
      ended.push(record);
      if (!record.available) continue;
      const gone = this.remoteOf(record);
      const host = hosts.get(jid.domain);
      if (!gone || !host) continue;
      gone.dead = true;
      this.deps.sessions.removeRemote(jid, node);
      await host.hooks.fire('presence/broadcast', { session: gone, stanza: xml('presence', { type: 'unavailable', from: full }), initial: false });
    }
    await this.redis.del(`${this.p}node-sessions:${node}`);
    if (ended.length > 0) {
      // The other live nodes through their inboxes (at-least-once: a room drops an occupant once anyway).
      const others = (await this.nodes()).filter((n) => n.alive && n.node !== this.me && n.node !== node);
      for (const other of others) this.send(other.node, { t: 'gone', node, records: JSON.stringify(ended) });
      for (const record of ended) await this.sessionGone(record, node, true);
    }
    for (const handler of this.goneHandlers) {
      await handler(node).catch((err: unknown) => this.deps.log.error({ err: (err as Error).message, dead: node }, 'cluster: cleaning up after a node failed'));
    }
    if (node !== this.me) {
      await this.drain(node);
      await this.redis.multi().del(this.inbox(node)).srem(`${this.p}nodes`, node).exec();
    } else {
      // Our own inbox from before: what was pending is routed again (offline storage for sessions that are gone).
      await this.drain(node);
      await this.redis.del(this.inbox(node));
    }
  }

  /** A 'gone' entry: the sessions of a dead node another node reaped end here too. */
  private async othersGone(fields: Fields): Promise<void> {
    let records: SessionRecord[];
    try {
      records = JSON.parse(fields.records ?? '[]') as SessionRecord[];
    } catch {
      return;
    }
    for (const record of records) await this.sessionGone(record, fields.node ?? record.node, false);
  }

  /** A session of the dead `node` ended: this node's 'session/closed' hooks run for it. */
  private async sessionGone(record: SessionRecord, node: string, here: boolean): Promise<void> {
    const session = this.remoteOf(record);
    const host = session && this.deps.hosts.get(session.jid.domain);
    if (!session || !host) return;
    session.dead = true;
    this.deps.sessions.removeRemote(session.jid, record.node);
    await host.hooks.fire('session/closed', { session, reaped: { node, here } });
  }

  /** Takes over a node's inbox: its unacknowledged entries, then those never read. */
  private async drain(node: string): Promise<void> {
    const key = this.inbox(node);
    if ((await this.redis.exists(key)) === 0) return;
    await this.ensureGroup(node);
    let cursor = '0-0';
    do {
      const [next, entries] = (await this.redis.call('XAUTOCLAIM', key, GROUP, this.me, '0', cursor, 'COUNT', '100')) as [string, [string, string[] | null][]];
      await this.handleEntries(key, entries);
      cursor = next;
    } while (cursor !== '0-0');
    for (;;) {
      const entries = entriesOf(await this.redis.call('XREADGROUP', 'GROUP', GROUP, this.me, 'COUNT', '100', 'STREAMS', key, '>'));
      if (entries.length === 0) break;
      await this.handleEntries(key, entries);
    }
  }

  private async ensureGroup(node: string): Promise<void> {
    await this.redis.xgroup('CREATE', this.inbox(node), GROUP, '0', 'MKSTREAM').catch((err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err;
    });
  }

  // --- this node's inbox -------------------------------------------------------------------------

  private async readLoop(reader: Redis): Promise<void> {
    const key = this.inbox(this.me);
    // What this node read before and did not acknowledge first (a restart), then new entries.
    let from = '0';
    while (!this.stopping) {
      try {
        const args = from === '0' ? ['STREAMS', key, '0'] : ['BLOCK', '5000', 'STREAMS', key, '>'];
        const entries = entriesOf(await reader.call('XREADGROUP', 'GROUP', GROUP, this.me, 'COUNT', '100', ...args));
        if (from === '0' && entries.length === 0) from = '>';
        await this.handleEntries(key, entries);
      } catch (err) {
        if (this.stopping) return;
        const message = (err as Error).message;
        // The group is gone (the inbox was cleaned up while this node looked dead): made again.
        if (/NOGROUP/.test(message)) await this.ensureGroup(this.me).catch(() => {});
        else this.deps.log.warn({ err: message }, 'cluster: reading the inbox failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 1000).unref());
      }
    }
  }

  private async handleEntries(key: string, entries: [string, string[] | null][]): Promise<void> {
    if (entries.length === 0) return;
    for (const [, flat] of entries) if (flat) await this.handle(Object.fromEntries(pairs(flat)));
    // Acknowledged and removed once the whole batch is handled (one round trip, not one per
    // entry): an inbox holds only what is not handled yet; a crash in between delivers the
    // batch again (at least once).
    const ids = entries.map(([id]) => id);
    await this.redis
      .multi()
      .xack(key, GROUP, ...ids)
      .xdel(key, ...ids)
      .exec();
  }

  /** One entry of an inbox: a stanza for a session of this node, a session to end, or a kind registered with onEntry ('gone' among them). */
  private async handle(fields: Fields): Promise<void> {
    const kind = this.kinds.get(fields.t ?? '');
    if (kind) return kind(fields);
    const to = tryParseJid(fields.to ?? '');
    if (!to) return;
    if (fields.t === 'close') {
      const session = this.deps.sessions.getLocal(to);
      if (session && !session.closed) session.close(fields.condition ? new StreamError(fields.condition as StreamErrorCondition, fields.text || undefined) : undefined);
      return;
    }
    const stanza = entryStanza(fields, this.deps.log, 'cluster');
    if (!stanza) return;
    await this.deps.router.deliverForwarded(stanza, to);
  }
}

type Entry = [id: string, fields: string[] | null];

/** The entries of an XREADGROUP reply on one stream: [[key, entries]], or [key, entries] as ioredis's call() gives it. */
function entriesOf(reply: unknown): Entry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const stream = (Array.isArray(reply[0]) ? reply[0] : reply) as [string, Entry[]];
  return Array.isArray(stream[1]) ? stream[1] : [];
}

function* pairs(flat: string[]): Iterable<[string, string]> {
  for (let i = 0; i + 1 < flat.length; i += 2) yield [flat[i], flat[i + 1]];
}

/** The stanza an inbox entry carries (its `xml` field); undefined, with a warning by `who`, when it is not one. */
export function entryStanza(fields: Fields, log: Logger, who: string): Element | undefined {
  try {
    return parseElement(fields.xml ?? '');
  } catch (err) {
    log.warn({ err: (err as Error).message }, `${who}: an inbox entry is not a stanza; dropped`);
    return undefined;
  }
}
