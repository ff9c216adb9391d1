// The sessions bound on this node, by bare JID and resource: the router's hot-path lookup.
// Every change is mirrored to the live-state directory, which a cluster shares.
import type { Jid } from '../jid.js';
import type { SessionDirectory } from './live-state.js';
import type { Session } from './session.js';

export class LocalSessions {
  private readonly byBare = new Map<string, Map<string, Session>>();

  constructor(
    private readonly directory: SessionDirectory,
    private readonly node: string,
    /** A directory update failed (Redis lost): reported, never an unhandled rejection. */
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Registers a bound session; returns the session it replaces (same full JID), if any. */
  add(session: Session & { jid: Jid }): Session | undefined {
    const bare = session.jid.bare.toString();
    let resources = this.byBare.get(bare);
    if (!resources) this.byBare.set(bare, (resources = new Map()));
    const previous = resources.get(session.jid.resource);
    resources.set(session.jid.resource, session);
    void this.publish(session);
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

  /** Mirrors presence and priority changes to the directory; a failure goes to onError. */
  publish(session: Session): Promise<void> {
    if (!session.jid) return Promise.resolve();
    return this.directory
      .put({
        jid: session.jid.toString(),
        node: this.node,
        priority: session.priority,
        available: session.presence !== undefined,
      })
      .catch(this.onError);
  }

  get(full: Jid): Session | undefined {
    return this.byBare.get(full.bare.toString())?.get(full.resource);
  }

  resourcesOf(bare: Jid): Session[] {
    const resources = this.byBare.get(bare.bare.toString());
    return resources ? [...resources.values()] : [];
  }

  count(bare: Jid): number {
    return this.byBare.get(bare.bare.toString())?.size ?? 0;
  }

  *all(): IterableIterator<Session> {
    for (const resources of this.byBare.values()) yield* resources.values();
  }

  get size(): number {
    let n = 0;
    for (const resources of this.byBare.values()) n += resources.size;
    return n;
  }
}
