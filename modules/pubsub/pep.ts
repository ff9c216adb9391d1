// The PEP side of the engine (XEP-0163): every account's bare JID is a pubsub service that the
// account owns, with presence-based defaults; and the last published items a client gets when
// its capabilities become known (it came online, or announced new caps): of its own account's
// nodes and of the contacts on this host whose presence it receives (subscription to or both),
// for each node it has `+notify` for, whose access model lets it in and whose
// send_last_published_item is on_sub_and_presence. A contact on another server gets them the
// same way when its resource's capabilities become known to the account (caps: remote.ts).
import { tryParseJid, type Jid } from '../../src/jid.js';
import type { Logger } from '../../src/log.js';
import type { Session } from '../../src/sessions/session.js';
import type { RosterService } from '../roster/service.js';
import type { PubsubEngine, ServiceRules } from './engine.js';
import { PEP_DEFAULTS } from './node-config.js';

export function pepRules(roster: RosterService): ServiceRules {
  return {
    defaults: PEP_DEFAULTS,
    account: (service) => ({ host: service.domain, username: service.local }),
    isOwner: (service, who) => who.bare.equals(service.bare),
    mayCreate: (service, who) => who.bare.equals(service.bare),
    nodeOwners: false,
    rosterItem: (service, who) => roster.item(service.bare, who.bare),
  };
}

/** The accounts (bare JIDs on `domain`) whose PEP events a session may get: its own and those it is subscribed to. */
async function ownersFor(session: Session, roster: RosterService, domain: string): Promise<Jid[]> {
  const user = session.jid!.bare;
  const owners = [user];
  for (const item of await roster.items(user)) {
    if (item.subscription !== 'to' && item.subscription !== 'both') continue;
    const contact = tryParseJid(item.jid);
    if (contact && contact.domain === domain && contact.local !== '') owners.push(contact);
  }
  return owners;
}

/** Sends `to` the last item of each of `owner`'s nodes it wants (`+notify`), may read, and gets on presence. */
async function sendOwnerLastItems(engine: PubsubEngine, owner: Jid, to: Jid, features: ReadonlySet<string>, log: Logger): Promise<void> {
  for (const [node, config] of await engine.store.nodes(owner.toString())) {
    if (config.send_last_published_item !== 'on_sub_and_presence' || !features.has(`${node}+notify`)) continue;
    try {
      await engine.checkAccess(owner, node, config, to);
    } catch {
      continue;
    }
    await engine.sendLast(owner, node, to).catch((err: unknown) => log.warn({ err, node }, 'sending the last published item failed'));
  }
}

/** Sends `session` the last item of every node it should get one of, now that its features are known. */
export async function sendLastItems(engine: PubsubEngine, roster: RosterService, domain: string, session: Session, features: ReadonlySet<string>, log: Logger): Promise<void> {
  const to = session.jid;
  if (!to || session.closed) return;
  for (const owner of await ownersFor(session, roster, domain)) await sendOwnerLastItems(engine, owner, to, features, log);
}

/**
 * A remote contact's resource became known to `account` with `features`: the last items of the
 * account's nodes, when the contact receives the account's presence (subscription from or both).
 */
export async function sendLastItemsToRemote(engine: PubsubEngine, roster: RosterService, account: Jid, remote: Jid, features: ReadonlySet<string>, log: Logger): Promise<void> {
  const item = await roster.item(account, remote.bare);
  if (item?.subscription !== 'from' && item?.subscription !== 'both') return;
  await sendOwnerLastItems(engine, account, remote, features, log);
}
