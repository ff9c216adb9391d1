// Who gets a PEP node's events (XEP-0163 §4.3): the owner's available resources and the
// available resources of contacts with a presence subscription (from or both) that the node's
// access model lets in, each only if its entity capabilities (XEP-0115) announce `<node>+notify`;
// and the explicit subscriptions (XEP-0060 subscribe). Events are headline messages from the
// account's bare JID, routed like any stanza (so they pass the outbound pipeline: CSI, SM).
//
// A contact on another server is reached at the resources whose presence reached the owner's
// account, with the capabilities they announced there (the caps service tracks them).
//
// The general service (pubsub.<host>) notifies its explicit subscriptions only: subscriberNotifier.
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import { tryParseJid, type Jid } from '../../src/jid.js';
import type { Router } from '../../src/router/router.js';
import type { LocalSessions } from '../../src/sessions/local-sessions.js';
import { cloneElement } from '../../src/xml/clone.js';
import type { CapsService } from '../caps/service.js';
import type { RosterService } from '../roster/service.js';
import { accessError } from './access.js';
import type { Notifier } from './engine.js';
import type { NodeConfig } from './node-config.js';
import type { PubsubStore } from './store.js';

export interface PepNotifierDeps {
  router: Router;
  sessions: LocalSessions;
  roster: RosterService;
  caps: () => CapsService | undefined;
  store: PubsubStore;
}

/** Whether the client at `full` asked for the node's notifications (XEP-0163 §4.3: `+notify`). */
export function wantsNotify(caps: CapsService | undefined, full: Jid, node: string): boolean {
  return caps?.hasFeature(full, `${node}+notify`) ?? false;
}

/** Sends an event to one entity: a headline message from the service. */
const sender = (router: Router) => async (service: Jid, to: Jid, event: Element) => {
  const id = `pep-${randomBytes(8).toString('hex')}`;
  await router.route(xml('message', { type: 'headline', from: service.toString(), to: to.toString(), id }, cloneElement(event)));
};

/** Adds the node's explicit subscriptions (outcasts aside) to `to`; a bare JID is skipped when some of its resources are there. */
async function addSubscribers(store: PubsubStore, service: Jid, node: string, affiliations: Map<string, string>, to: Map<string, Jid>): Promise<void> {
  for (const subscription of await store.subscriptions(service.toString(), node)) {
    const jid = tryParseJid(subscription.jid);
    if (!jid || affiliations.get(jid.bare.toString()) === 'outcast') continue;
    // A bare JID subscribed gets it once, not besides its resources that have it already.
    if (jid.isBare && [...to.values()].some((j) => j.bare.equals(jid))) continue;
    to.set(jid.toString(), jid);
  }
}

const affiliationsOf = async (store: PubsubStore, service: Jid, node: string) => new Map((await store.affiliations(service.toString(), node)).map((a) => [a.jid, a.affiliation]));

/** Events to the node's explicit subscriptions only (the general service). */
export function subscriberNotifier(router: Router, store: PubsubStore): Notifier {
  const send = sender(router);
  return {
    send,
    async broadcast(service, node, _config, event) {
      const to = new Map<string, Jid>();
      await addSubscribers(store, service, node, await affiliationsOf(store, service, node), to);
      for (const jid of to.values()) await send(service, jid, event);
    },
  };
}

export function pepNotifier(deps: PepNotifierDeps): Notifier {
  const { router, sessions, roster, store } = deps;
  const send = sender(router);

  /** The full JIDs of `user`'s available resources (sessions here, or a remote contact's) that want the node's notifications. */
  const interested = (user: Jid, node: string): Jid[] => {
    const caps = deps.caps();
    const local = sessions
      .resourcesOf(user)
      .filter((s) => s.presence !== undefined && !s.closed)
      .map((s) => s.jid!);
    return [...local, ...(caps?.remoteResources(user) ?? [])].filter((jid) => wantsNotify(caps, jid, node));
  };

  const recipients = async (owner: Jid, node: string, config: NodeConfig): Promise<Map<string, Jid>> => {
    const to = new Map<string, Jid>();
    const add = (jid: Jid) => to.set(jid.toString(), jid);
    interested(owner, node).forEach(add);
    const affiliations = await affiliationsOf(store, owner, node);
    for (const item of await roster.items(owner)) {
      if (item.subscription !== 'from' && item.subscription !== 'both') continue;
      const contact = tryParseJid(item.jid);
      if (!contact) continue;
      if (accessError(config, { owner: false, rosterItem: item, affiliation: affiliations.get(item.jid) })) continue;
      interested(contact, node).forEach(add);
    }
    await addSubscribers(store, owner, node, affiliations, to);
    return to;
  };

  return {
    send,
    async broadcast(service, node, config, event) {
      for (const to of (await recipients(service, node, config)).values()) await send(service, to, event);
    },
  };
}
