// XEP-0030 Service Discovery: the server's own identities, features, forms (XEP-0128) and items,
// and the answers the server gives on behalf of its accounts' bare JIDs. XEP-0157 contact
// addresses are configured here and shown as the http://jabber.org/network/serverinfo form.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import type { Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import type { DiscoItem } from '../../src/module-api/host.js';
import { StanzaError } from '../../src/stream/errors.js';
import { NS } from '../../src/xml/namespaces.js';
import { RosterKey } from '../roster/service.js';
import { DiscoKey, type AccountItemsProvider, type DiscoInfo, type DiscoService, type HostNodeProvider } from './service.js';
import { cloneElement } from '../../src/xml/clone.js';

const NS_DATA = 'jabber:x:data';
const SERVERINFO = 'http://jabber.org/network/serverinfo';

const uris = z.array(z.string().regex(/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/, 'expected a URI such as "mailto:abuse@example.org" or "xmpp:admin@example.org"')).default([]);

/** XEP-0157 address kinds; each becomes the field `<kind>-addresses` of the serverinfo form. */
const CONTACT_KINDS = ['abuse', 'admin', 'feedback', 'sales', 'security', 'status', 'support'] as const;

export const DiscoConfig = z.strictObject({
  /** XEP-0157 contact addresses (URIs) per kind. */
  contact_info: z
    .strictObject({
      abuse: uris,
      admin: uris,
      feedback: uris,
      sales: uris,
      security: uris,
      status: uris,
      support: uris,
    })
    .prefault({}),
});
export type DiscoConfig = z.infer<typeof DiscoConfig>;

/** The XEP-0128 form of XEP-0157 contact addresses; undefined when none is configured. */
export function contactForm(info: DiscoConfig['contact_info']): Element | undefined {
  const fields = CONTACT_KINDS.filter((kind) => info[kind].length > 0).map((kind) =>
    xml('field', { var: `${kind}-addresses`, type: 'list-multi' }, ...info[kind].map((uri) => xml('value', {}, uri))),
  );
  if (fields.length === 0) return undefined;
  return xml('x', { xmlns: NS_DATA, type: 'result' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, SERVERINFO)), ...fields);
}

function infoQuery(info: DiscoInfo, node: string | undefined): Element {
  return xml(
    'query',
    { xmlns: NS.DISCO_INFO, node },
    ...info.identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name, 'xml:lang': i.lang })),
    ...info.features.map((f) => xml('feature', { var: f })),
    ...info.forms.map((f) => cloneElement(f)),
  );
}

function itemElement(item: DiscoItem): Element {
  return xml('item', { jid: item.jid, name: item.name, node: item.node });
}

export default defineModule({
  name: 'disco',
  config: DiscoConfig,
  setup(ctx) {
    const host = ctx.host;
    const infoNodes = new Set<(node: string) => boolean>();
    const accountItems = new Set<AccountItemsProvider>();
    const hostNodes = new Set<HostNodeProvider>();

    ctx.feature(NS.DISCO_INFO);
    ctx.feature(NS.DISCO_ITEMS);
    ctx.accountFeature(NS.DISCO_INFO);
    ctx.accountFeature(NS.DISCO_ITEMS);
    const form = contactForm(ctx.config.contact_info);
    if (form) ctx.discoForm(form);

    const hostInfo = (): DiscoInfo => ({
      identities: host.discoIdentities.map((i) => ({ ...i })),
      features: [...host.discoFeatures].sort(),
      forms: [...host.discoForms],
    });

    // --- the server itself ------------------------------------------------------------------

    ctx.iq.get(NS.DISCO_INFO, 'query', async (iq) => {
      const node = iq.payload.attrs.node;
      if (node === undefined || [...infoNodes].some((match) => match(node))) return iq.reply(infoQuery(hostInfo(), node));
      for (const provider of hostNodes) {
        const info = await provider.info(node, iq.from);
        if (info) return iq.reply(infoQuery(info, node));
      }
      throw new StanzaError('item-not-found', `no node ${node}`);
    });
    ctx.iq.get(NS.DISCO_ITEMS, 'query', async (iq) => {
      const node = iq.payload.attrs.node;
      if (node === undefined) return iq.reply(xml('query', { xmlns: NS.DISCO_ITEMS }, ...host.discoItems.map(itemElement)));
      for (const provider of hostNodes) {
        const items = await provider.items(node, iq.from);
        if (items) return iq.reply(xml('query', { xmlns: NS.DISCO_ITEMS, node }, ...items.map(itemElement)));
      }
      throw new StanzaError('item-not-found', `no node ${node}`);
    });

    // --- accounts, answered by the server on their behalf (XEP-0030 §3.1 and §8) ------------

    /**
     * Whether `requester` may learn about `user`'s account: the account itself, the server, and
     * contacts who receive the user's presence (subscription from or both, when the roster
     * module is loaded). Everyone else gets service-unavailable, as for an account that does
     * not exist, so accounts cannot be harvested.
     */
    const mayDiscover = async (requester: Jid, user: Jid): Promise<boolean> => {
      if (requester.bare.equals(user.bare)) return true;
      if (requester.local === '' && requester.domain === ctx.domain) return true;
      const roster = ctx.tryUse(RosterKey);
      return roster ? roster.sharesPresenceWith(user.bare, requester.bare) : false;
    };

    ctx.iq.get(
      NS.DISCO_INFO,
      'query',
      async (iq) => {
        if (!(await mayDiscover(iq.from, iq.to))) throw new StanzaError('service-unavailable');
        const node = iq.payload.attrs.node;
        if (node !== undefined) throw new StanzaError('item-not-found', `no node ${node}`);
        return iq.reply(
          infoQuery({ identities: [{ category: 'account', type: 'registered' }, ...host.accountIdentities], features: [...host.accountFeatures].sort(), forms: [] }, undefined),
        );
      },
      { to: 'bare' },
    );
    ctx.iq.get(
      NS.DISCO_ITEMS,
      'query',
      async (iq) => {
        const node = iq.payload.attrs.node;
        const found: DiscoItem[] = [];
        let known = node === undefined;
        for (const provider of accountItems) {
          const items = await provider(iq.to.bare, iq.from, node);
          if (items === undefined) continue;
          known = true;
          found.push(...items);
        }
        if (!known) throw new StanzaError('item-not-found', `no node ${node}`);
        return iq.reply(xml('query', { xmlns: NS.DISCO_ITEMS, node }, ...found.map(itemElement)));
      },
      { to: 'bare' },
    );

    const service: DiscoService = {
      hostInfo,
      addHostInfoNode(match) {
        infoNodes.add(match);
        return () => void infoNodes.delete(match);
      },
      addAccountItems(provider) {
        accountItems.add(provider);
        return () => void accountItems.delete(provider);
      },
      addHostNodes(provider) {
        hostNodes.add(provider);
        return () => void hostNodes.delete(provider);
      },
    };
    ctx.provide(DiscoKey, service);
  },
});
