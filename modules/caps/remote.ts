// Entity capabilities of remote contacts: presence that reaches a local account from another
// server carries the contact's <c/>, and PEP (XEP-0163 §4.3) needs the features it stands for
// to know whether that resource wants a node's notifications (`+notify`), and to send it the
// last published items when it comes online. Kept per full JID while the resource is
// available (a bounded number of them), learnt through the same cache as local clients' caps.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import type { Announcement, Announcer, CapsEntry, CapsLearner } from './learner.js';

/** Remote resources tracked at most; past it, new ones are not (their PEP events then need a subscription). */
const MAX_REMOTE_RESOURCES = 50_000;

/** A remote resource that is available, and the local accounts its presence reached. */
interface RemoteResource {
  jid: Jid;
  announcement?: Announcement;
  accounts: Map<string, Jid>;
}

/** Called when a remote resource's features are known to `account` (new caps, or its presence newly reached it). */
export type RemoteFeaturesListener = (remote: Jid, account: Jid, features: ReadonlySet<string>) => void;

export class RemoteCaps {
  /** By bare JID, then full JID. */
  private readonly resources = new Map<string, Map<string, RemoteResource>>();
  private count = 0;

  constructor(
    private readonly learner: CapsLearner,
    private readonly announcementOf: (presence: Element) => Omit<Announcement, 'entry'> | undefined,
    private readonly notify: RemoteFeaturesListener,
  ) {}

  private find(jid: Jid): RemoteResource | undefined {
    return this.resources.get(jid.bare.toString())?.get(jid.toString());
  }

  /** A presence from `from` (a remote full JID) reached the local account `account`. */
  onPresence(from: Jid, account: Jid, presence: Element): void {
    const type = presence.attrs.type;
    if (type === 'unavailable') return this.forget(from);
    if (type !== undefined || from.isBare) return;
    const resource = this.find(from) ?? this.add(from);
    if (!resource) return;
    const reachedAccount = !resource.accounts.has(account.toString());
    resource.accounts.set(account.toString(), account);
    const next = this.announcementOf(presence);
    const previous = resource.announcement;
    if (next && !(previous && previous.node === next.node && previous.ver === next.ver && previous.hash === next.hash)) {
      resource.announcement = { ...next };
      this.learner.resolve(this.announcer(resource));
    } else if (reachedAccount && previous?.entry) {
      this.notify(from, account, previous.entry.features);
    }
  }

  private add(jid: Jid): RemoteResource | undefined {
    if (this.count >= MAX_REMOTE_RESOURCES) return undefined;
    const bare = jid.bare.toString();
    let ofBare = this.resources.get(bare);
    if (!ofBare) this.resources.set(bare, (ofBare = new Map()));
    const resource: RemoteResource = { jid, accounts: new Map() };
    ofBare.set(jid.toString(), resource);
    this.count++;
    return resource;
  }

  private forget(jid: Jid): void {
    const bare = jid.bare.toString();
    const ofBare = this.resources.get(bare);
    if (!ofBare) return;
    // An unavailable from the bare JID ends every resource of it.
    const gone = jid.isBare ? [...ofBare.keys()] : [jid.toString()];
    for (const full of gone) if (ofBare.delete(full)) this.count--;
    if (ofBare.size === 0) this.resources.delete(bare);
  }

  private announcer(resource: RemoteResource): Announcer {
    return {
      jid: resource.jid,
      current: () => (this.find(resource.jid) === resource ? resource.announcement : undefined),
      learnt: (announcement: Announcement, entry: CapsEntry) => {
        if (resource.announcement !== announcement || this.find(resource.jid) !== resource) return;
        announcement.entry = entry;
        for (const account of resource.accounts.values()) this.notify(resource.jid, account, entry.features);
      },
    };
  }

  featuresOf(jid: Jid): ReadonlySet<string> | undefined {
    return this.find(jid)?.announcement?.entry?.features;
  }

  /** The available resources of a remote bare JID that this server knows of. */
  resourcesOf(bare: Jid): Jid[] {
    return [...(this.resources.get(bare.toString())?.values() ?? [])].map((r) => r.jid);
  }
}
