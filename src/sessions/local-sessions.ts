// The sessions bound on this node, by bare JID and resource: the router's hot-path lookup.
// Every change is mirrored to the live-state directory, which a cluster shares. In a cluster it
// also keeps a copy of the other nodes' sessions (RemoteSession, fed by the cluster from the
// directory's changes), so that get() and resourcesOf() see the account on every node without
// asking Redis per stanza; all() and size stay this node's own.
import type { Jid } from '../jid.js';
import type { SessionKey } from '../module-api/keys.js';
import type { SessionDirectory, SessionRecord } from './live-state.js';
import { RemoteSession } from './remote-session.js';
import type { Session } from './session.js';

export class LocalSessions {
  private readonly byBare = new Map<string, Map<string, Session>>();
  private readonly remote = new Map<string, Map<string, RemoteSession>>();
  /** Set by the cluster: the directory keeps presence for the other nodes, and a bind claims cluster-wide. */
  clustered: { onClaimed(previous: SessionRecord, session: Session & { jid: Jid }): void } | undefined;

  /** Boolean session keys the other nodes see on their copies (a roster asked for: roster pushes). */
  readonly sharedFlags = new Map<string, SessionKey<boolean>>();

  /** Teardowns (presence, 'session/closed' hooks) of ended sessions still running. */
  private readonly teardowns = new Set<Promise<void>>();

  constructor(
    private readonly directory: SessionDirectory,
    readonly node: string,
    /** A directory update failed (Redis lost): reported, never an unhandled rejection. */
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Registers a bound session; returns the session it replaces (same full JID), if any. */
  add(session: Session & { jid: Jid }): Session | undefined {
    if (session instanceof RemoteSession) return undefined;
    const bare = session.jid.bare.toString();
    let resources = this.byBare.get(bare);
    if (!resources) this.byBare.set(bare, (resources = new Map()));
    const previous = resources.get(session.jid.resource);
    resources.set(session.jid.resource, session);
    const cluster = this.clustered;
    if (!cluster) {
      void this.publish(session);
      return previous;
    }
    // The full JID is taken cluster-wide, atomically: a node that held it ends its session.
    this.directory
      .claim(this.record(session))
      .then((replaced) => {
        if (replaced && replaced.node !== this.node) cluster.onClaimed(replaced, session);
      })
      .catch(this.onError);
    return previous;
  }

  remove(session: Session): void {
    if (!session.jid) return;
    const bare = session.jid.bare.toString();
    const resources = this.byBare.get(bare);
    if (resources?.get(session.jid.resource) !== session) return;
    resources.delete(session.jid.resource);
    if (resources.size === 0) this.byBare.delete(bare);
    this.directory.remove(session.jid.toString(), this.node).catch(this.onError);
  }

  /** A session ended: its teardown runs meanwhile; a stop waits for it before storage closes. */
  tearingDown(teardown: Promise<void>): void {
    this.teardowns.add(teardown);
    const done = () => void this.teardowns.delete(teardown);
    teardown.then(done, done);
  }

  /** Settles once every teardown begun so far is done, or after `timeoutMs`. */
  async teardownsDone(timeoutMs: number): Promise<void> {
    if (this.teardowns.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.teardowns]), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Mirrors presence and priority changes to the directory; a failure goes to onError. */
  publish(session: Session): Promise<void> {
    if (!session.jid || session instanceof RemoteSession) return Promise.resolve();
    // Ended (removed) already: its teardown (unavailable presence, flags cleared) must not put it back.
    if (this.getLocal(session.jid) !== session) return Promise.resolve();
    return this.directory.put(this.record(session)).catch(this.onError);
  }

  private record(session: Session): SessionRecord {
    const record: SessionRecord = { jid: session.jid!.toString(), node: this.node, priority: session.priority, available: session.presence !== undefined };
    if (this.clustered) Object.assign(record, { ip: session.remoteAddress, since: session.connectedAt, secure: session.secure });
    if (this.clustered && session.presence) record.presence = session.presence.toString();
    if (this.clustered && this.sharedFlags.size > 0) {
      const flags = [...this.sharedFlags].filter(([, key]) => session.data.get(key) === true).map(([name]) => name);
      if (flags.length > 0) record.flags = flags;
    }
    return record;
  }

  /** Makes a boolean session key visible on the other nodes' copies; set it with setFlag(). */
  shareFlag(key: SessionKey<boolean>): void {
    this.sharedFlags.set(key.name, key);
  }

  /** Sets a shared flag on a session of this node, and tells the other nodes (in a cluster). */
  setFlag(session: Session, key: SessionKey<boolean>): void {
    if (session.data.get(key) === true) return;
    session.data.set(key, true);
    if (this.clustered && this.sharedFlags.has(key.name)) void this.publish(session);
  }

  /** Clears a shared flag on a session of this node, and tells the other nodes (in a cluster). */
  clearFlag(session: Session, key: SessionKey<boolean>): void {
    if (session.data.get(key) !== true) return;
    session.data.delete(key);
    if (this.clustered && this.sharedFlags.has(key.name)) void this.publish(session);
  }

  /** A session of another node, as the directory has it now (the cluster's copy). */
  putRemote(session: RemoteSession): void {
    const bare = session.jid.bare.toString();
    let resources = this.remote.get(bare);
    if (!resources) this.remote.set(bare, (resources = new Map()));
    resources.set(session.jid.resource, session);
  }

  /** Drops the copy of another node's session, if it is still that node's; returns it. */
  removeRemote(full: Jid, node: string): RemoteSession | undefined {
    const bare = full.bare.toString();
    const resources = this.remote.get(bare);
    const session = resources?.get(full.resource);
    if (!session || session.node !== node) return undefined;
    resources!.delete(full.resource);
    if (resources!.size === 0) this.remote.delete(bare);
    return session;
  }

  /** The other nodes' sessions, as this node knows them. */
  *allRemote(): IterableIterator<RemoteSession> {
    for (const resources of this.remote.values()) yield* resources.values();
  }

  getRemote(full: Jid): RemoteSession | undefined {
    return this.remote.get(full.bare.toString())?.get(full.resource);
  }

  /** This node's own session for a full JID. */
  getLocal(full: Jid): Session | undefined {
    return this.byBare.get(full.bare.toString())?.get(full.resource);
  }

  get(full: Jid): Session | undefined {
    return this.getLocal(full) ?? (this.remote.size === 0 ? undefined : this.getRemote(full));
  }

  /** This node's own sessions of an account. */
  localResourcesOf(bare: Jid): Session[] {
    const resources = this.byBare.get(bare.bare.toString());
    return resources ? [...resources.values()] : [];
  }

  /** The account's sessions on every node (this node's first). */
  resourcesOf(bare: Jid): Session[] {
    const local = this.localResourcesOf(bare);
    if (this.remote.size === 0) return local;
    const remote = this.remote.get(bare.bare.toString());
    if (!remote) return local;
    const out: Session[] = local;
    for (const [resource, session] of remote) if (!this.byBare.get(bare.bare.toString())?.has(resource)) out.push(session);
    return out;
  }

  /** Sessions of the account on every node. */
  count(bare: Jid): number {
    return this.resourcesOf(bare).length;
  }

  /** This node's sessions. */
  *all(): IterableIterator<Session> {
    for (const resources of this.byBare.values()) yield* resources.values();
  }

  /** This node's sessions. */
  get size(): number {
    let n = 0;
    for (const resources of this.byBare.values()) n += resources.size;
    return n;
  }
}
