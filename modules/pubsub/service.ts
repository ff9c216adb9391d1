// The general pubsub service (XEP-0060) on a domain of its own (pubsub.<host> by default), on
// the same engine and protocol as PEP: nodes belong to no account, each has owners of its own
// (its creator, and whom the owners add; the host's admins own every node), new nodes are open,
// and events go to explicit subscriptions only, as headline messages from the service.
// Who may create nodes: the host's accounts, or only its admins (node_creation).
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { IqRequest } from '../../src/module-api/iq.js';
import type { DomainHandler, Router } from '../../src/router/router.js';
import { StanzaError } from '../../src/stream/errors.js';
import type { PubsubEngine, ServiceRules } from './engine.js';
import { SERVICE_FEATURES } from './features.js';
import { SERVICE_DEFAULTS } from './node-config.js';
import { NS_OWNER, NS_PUBSUB } from './ns.js';
import type { PubsubProtocol } from './protocol.js';

const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

export interface ServiceOptions {
  /** The host whose accounts use the service. */
  host: string;
  creation: 'users' | 'admins';
  /** Bare JIDs of the host's admins (asked at each use: `starling reload` may change them). */
  admins: { has(bareJid: string): boolean };
}

export function serviceRules({ host, creation, admins }: ServiceOptions): ServiceRules {
  const isAdmin = (who: Jid) => admins.has(who.bare.toString());
  return {
    defaults: SERVICE_DEFAULTS,
    account: () => undefined,
    isOwner: (_service, who) => isAdmin(who),
    mayCreate: (_service, who) => (creation === 'admins' ? isAdmin(who) : who.domain === host && who.local !== ''),
    rosterItem: () => Promise.resolve(undefined),
    nodeOwners: true,
  };
}

/** The one element of an IQ get or set. */
function payloadOf(stanza: Element): Element {
  const children = stanza.getChildElements();
  if (children.length !== 1) throw new StanzaError('bad-request', 'an IQ get or set carries exactly one child element');
  return children[0]!;
}

type Handler = (iq: IqRequest) => Promise<Element>;

export interface ServiceDeps {
  domain: string;
  name: string;
  engine: PubsubEngine;
  protocol: PubsubProtocol;
  router: Router;
}

/** The router's handler of every stanza to the service's domain; throws StanzaError for the router to bounce. */
export function serviceHandler({ domain, name, engine, protocol, router }: ServiceDeps): DomainHandler {
  /** disco#info of the service, or of one of its nodes (XEP-0060 §5.1, §5.3). */
  const info: Handler = async (iq) => {
    const node = iq.payload.attrs.node;
    if (node === undefined) {
      const identity = xml('identity', { category: 'pubsub', type: 'service', name });
      return iq.reply(xml('query', { xmlns: DISCO_INFO }, identity, ...[DISCO_INFO, DISCO_ITEMS, ...SERVICE_FEATURES].map((f) => xml('feature', { var: f }))));
    }
    const config = await engine.config(iq.to, node);
    const identity = xml('identity', { category: 'pubsub', type: 'leaf', name: config.title || undefined });
    return iq.reply(xml('query', { xmlns: DISCO_INFO, node }, identity, xml('feature', { var: DISCO_INFO }), xml('feature', { var: NS_PUBSUB })));
  };

  /** disco#items: the nodes the requester may read (§5.2), or a node's item ids (§5.5). */
  const items: Handler = async (iq) => {
    const node = iq.payload.attrs.node;
    if (node === undefined) {
      const nodes = await engine.visibleNodes(iq.to, iq.from);
      return iq.reply(xml('query', { xmlns: DISCO_ITEMS }, ...nodes.map(([n, c]) => xml('item', { jid: domain, node: n, name: c.title || undefined }))));
    }
    const stored = await engine.items(iq.to, iq.from, node, undefined, undefined);
    return iq.reply(xml('query', { xmlns: DISCO_ITEMS, node }, ...stored.map((i) => xml('item', { jid: domain, name: i.id }))));
  };

  const handlers = new Map<string, Handler>([
    [`get query ${DISCO_INFO}`, info],
    [`get query ${DISCO_ITEMS}`, items],
    [`get pubsub ${NS_PUBSUB}`, (iq) => protocol.get(iq)],
    [`set pubsub ${NS_PUBSUB}`, (iq) => protocol.set(iq)],
    [`get pubsub ${NS_OWNER}`, (iq) => protocol.ownerGet(iq)],
    [`set pubsub ${NS_OWNER}`, (iq) => protocol.ownerSet(iq)],
  ]);

  return async (stanza, from, to) => {
    // What the service sent coming back (an error about an event) is not handled again.
    if (from.domain === domain) return;
    const type = stanza.attrs.type;
    if (stanza.name !== 'iq' || (type !== 'get' && type !== 'set')) {
      if (stanza.name === 'message' && type !== 'error') throw new StanzaError('service-unavailable');
      return;
    }
    if (to.local !== '' || to.resource !== '') throw new StanzaError('service-unavailable');
    const payload = payloadOf(stanza);
    const handler = handlers.get(`${type} ${payload.name} ${payload.attrs.xmlns ?? ''}`);
    if (!handler) throw new StanzaError('service-unavailable');
    await router.route(await handler(new IqRequest(stanza, payload, from, to)));
  };
}
