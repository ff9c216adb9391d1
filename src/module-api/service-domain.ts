// A small service on a domain of its own (upload.<host>, proxy.<host>): disco#info with its
// identity and features, empty disco#items, the module's IQ handlers by payload, and the errors
// for everything else (service-unavailable; item-not-found for an address inside the domain).
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../jid.js';
import { StanzaError } from '../stream/errors.js';
import type { ModuleContext } from './define.js';
import type { DiscoIdentity } from './host.js';

const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

/** Answers an IQ's payload: the result's child (or null for an empty result), or throws StanzaError. */
export type ServiceIqHandler = (payload: Element, from: Jid, stanza: Element) => Element | null | Promise<Element | null>;

export interface ServiceDomain {
  identity: DiscoIdentity;
  features: string[];
  /** Extra disco#info forms (XEP-0128). */
  forms?: () => Element[];
  /** Handlers keyed by `${type} ${name} ${ns}` of the payload, e.g. "get request urn:xmpp:http:upload:0". */
  iq: Record<string, ServiceIqHandler>;
}

/** Serves `domain` (undone on unload) and lists it in the host's disco#items. */
export function serveDomain(ctx: ModuleContext<unknown>, domain: string, service: ServiceDomain): void {
  const info = () =>
    xml(
      'query',
      { xmlns: NS_DISCO_INFO },
      xml('identity', { ...service.identity }),
      xml('feature', { var: NS_DISCO_INFO }),
      ...service.features.map((f) => xml('feature', { var: f })),
      ...(service.forms?.() ?? []),
    );
  const handlers: Record<string, ServiceIqHandler> = {
    [`get query ${NS_DISCO_INFO}`]: (payload) => {
      if (payload.attrs.node) throw new StanzaError('item-not-found');
      return info();
    },
    [`get query ${NS_DISCO_ITEMS}`]: () => xml('query', { xmlns: NS_DISCO_ITEMS }),
    ...service.iq,
  };
  ctx.onUnload(
    ctx.server.router.addDomain(domain, async (stanza, from, to) => {
      if (from.domain === domain) return;
      if (stanza.name !== 'iq') {
        if (stanza.name === 'message' && stanza.attrs.type !== 'error') throw new StanzaError('service-unavailable');
        return;
      }
      const type = stanza.attrs.type;
      if (type !== 'get' && type !== 'set') return;
      if (to.local !== '' || to.resource !== '') throw new StanzaError('item-not-found');
      const payload = stanza.children.find((c): c is Element => typeof c !== 'string');
      const handler = payload && handlers[`${type} ${payload.name} ${payload.attrs.xmlns ?? ''}`];
      if (!handler) throw new StanzaError('service-unavailable');
      const result = await handler(payload, from, stanza);
      void ctx.server.router.route(xml('iq', { type: 'result', id: stanza.attrs.id, from: domain, to: from.toString() }, result));
    }),
  );
  ctx.discoItem({ jid: domain, name: service.identity.name });
}
