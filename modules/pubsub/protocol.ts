// The XEP-0060 IQ protocol over the engine: reads <pubsub/> requests (entity and owner
// namespaces), calls the engine with the service addressed and the requester, and builds the
// answers. Registered on every account's bare JID for PEP (XEP-0163).
import { xml, type Element } from '@xmpp/xml';
import { JidError, parseJid, type Jid } from '../../src/jid.js';
import type { IqRequest } from '../../src/module-api/iq.js';
import { StanzaError } from '../../src/stream/errors.js';
import { NS_RSM, readRsm, rsmResult } from '../../src/xml/rsm.js';
import { itemElement, type PubsubEngine } from './engine.js';
import { configForm } from './node-config.js';
import { NS_OWNER, NS_PUBSUB, pubsubError } from './ns.js';
import type { Affiliation } from './store.js';

const AFFILIATIONS = ['owner', 'publisher', 'member', 'outcast', 'none'] as const;
/** Most items in one page of a result set, whatever the request asks. */
const MAX_PAGE = 100;

/** The one action element of a <pubsub/> request, and the option elements beside it. */
function action(payload: Element, names: readonly string[]): Element {
  const found = payload.getChildElements().filter((c) => names.includes(c.name));
  if (found.length !== 1) throw new StanzaError('bad-request', `expected one of <${names.join('/>, <')}/>`);
  return found[0]!;
}

function nodeOf(el: Element): string {
  const node = el.attrs.node;
  if (!node) throw pubsubError('bad-request', 'nodeid-required', `<${el.name}/> needs a node`);
  return node;
}

function jidAttr(el: Element, fallback?: Jid): Jid {
  const value = el.attrs.jid;
  if (value === undefined) {
    if (fallback) return fallback;
    throw pubsubError('bad-request', 'invalid-jid', `<${el.name}/> needs a jid`);
  }
  try {
    return parseJid(value);
  } catch (err) {
    if (err instanceof JidError) throw new StanzaError('jid-malformed', `"${value}": ${err.message}`);
    throw err;
  }
}

const pubsub = (ns: string, ...children: Element[]) => xml('pubsub', { xmlns: ns }, ...children);

export class PubsubProtocol {
  constructor(private readonly engine: PubsubEngine) {}

  /** IQ get, http://jabber.org/protocol/pubsub. */
  async get(iq: IqRequest): Promise<Element> {
    const service = iq.to.bare;
    const el = action(iq.payload, ['items', 'subscriptions', 'affiliations']);
    if (el.name === 'items') {
      const node = nodeOf(el);
      if (iq.payload.getChild('set', NS_RSM)) {
        const page = await this.engine.itemsPage(service, iq.from, node, readRsm(iq.payload, MAX_PAGE));
        const ids = page.items.map((i) => i.id);
        return iq.reply(pubsub(NS_PUBSUB, xml('items', { node }, ...page.items.map(itemElement)), rsmResult(ids, page.index, page.count)));
      }
      const ids = el
        .getChildren('item')
        .map((i) => i.attrs.id)
        .filter((id): id is string => !!id);
      const max = el.attrs.max_items === undefined ? undefined : Number(el.attrs.max_items);
      if (max !== undefined && !(Number.isInteger(max) && max > 0)) throw new StanzaError('bad-request', 'max_items is a positive integer');
      const items = await this.engine.items(service, iq.from, node, ids.length > 0 ? ids : undefined, max);
      return iq.reply(pubsub(NS_PUBSUB, xml('items', { node }, ...items.map(itemElement))));
    }
    if (el.name === 'subscriptions') {
      const subs = await this.engine.subscriptionsOf(service, iq.from, el.attrs.node);
      return iq.reply(pubsub(NS_PUBSUB, xml('subscriptions', { node: el.attrs.node }, ...subs.map((s) => xml('subscription', { ...s, subscription: 'subscribed' })))));
    }
    const affs = await this.engine.affiliationsOf(service, iq.from, el.attrs.node);
    return iq.reply(pubsub(NS_PUBSUB, xml('affiliations', { node: el.attrs.node }, ...affs.map((a) => xml('affiliation', a)))));
  }

  /** IQ set, http://jabber.org/protocol/pubsub. */
  async set(iq: IqRequest): Promise<Element> {
    const service = iq.to.bare;
    const el = action(iq.payload, ['publish', 'retract', 'create', 'subscribe', 'unsubscribe']);
    switch (el.name) {
      case 'publish': {
        const node = nodeOf(el);
        const items = el.getChildren('item');
        if (items.length > 1) throw pubsubError('bad-request', 'invalid-payload', 'publish one item at a time');
        const options = iq.payload.getChild('publish-options')?.getChild('x', 'jabber:x:data');
        const id = await this.engine.publish(service, iq.from, node, items[0], options);
        return iq.reply(pubsub(NS_PUBSUB, xml('publish', { node }, xml('item', { id }))));
      }
      case 'retract': {
        const notify = el.attrs.notify === 'true' || el.attrs.notify === '1';
        await this.engine.retract(service, iq.from, nodeOf(el), el.getChild('item')?.attrs.id, notify);
        return iq.reply();
      }
      case 'create': {
        const node = await this.engine.createNode(service, iq.from, el.attrs.node, iq.payload.getChild('configure'));
        return iq.reply(el.attrs.node === undefined ? pubsub(NS_PUBSUB, xml('create', { node })) : undefined);
      }
      case 'subscribe': {
        const node = nodeOf(el);
        const jid = jidAttr(el);
        const subid = await this.engine.subscribe(service, iq.from, node, jid);
        return iq.reply(pubsub(NS_PUBSUB, xml('subscription', { node, jid: jid.toString(), subid, subscription: 'subscribed' })));
      }
      default: {
        await this.engine.unsubscribe(service, iq.from, nodeOf(el), jidAttr(el));
        return iq.reply();
      }
    }
  }

  /** IQ get, pubsub#owner: a node's configuration form, default form, or affiliations. */
  async ownerGet(iq: IqRequest): Promise<Element> {
    const service = iq.to.bare;
    const el = action(iq.payload, ['configure', 'default', 'affiliations', 'subscriptions']);
    if (el.name === 'default') return iq.reply(pubsub(NS_OWNER, xml('default', {}, configForm(this.engine.defaults))));
    const node = nodeOf(el);
    if (el.name === 'configure') {
      const config = await this.engine.configure(service, iq.from, node, undefined);
      return iq.reply(pubsub(NS_OWNER, xml('configure', { node }, configForm(config))));
    }
    if (el.name === 'subscriptions') {
      const subs = await this.engine.nodeSubscriptions(service, iq.from, node);
      return iq.reply(pubsub(NS_OWNER, xml('subscriptions', { node }, ...subs.map((s) => xml('subscription', { jid: s.jid, subid: s.subid, subscription: 'subscribed' })))));
    }
    const affs = await this.engine.nodeAffiliations(service, iq.from, node);
    return iq.reply(pubsub(NS_OWNER, xml('affiliations', { node }, ...affs.map((a) => xml('affiliation', a)))));
  }

  /** IQ set, pubsub#owner: configure, delete, purge, affiliations, subscriptions. */
  async ownerSet(iq: IqRequest): Promise<Element> {
    const service = iq.to.bare;
    const el = action(iq.payload, ['configure', 'delete', 'purge', 'affiliations', 'subscriptions']);
    const node = nodeOf(el);
    switch (el.name) {
      case 'subscriptions': {
        const changes = el.getChildren('subscription').map((s): [Jid, 'subscribed' | 'none'] => {
          const state = s.attrs.subscription;
          if (state !== 'subscribed' && state !== 'none') throw new StanzaError('bad-request', `an owner sets subscriptions to "subscribed" or "none", not "${state ?? ''}"`);
          return [jidAttr(s), state];
        });
        await this.engine.setSubscriptions(service, iq.from, node, changes);
        break;
      }
      case 'configure': {
        const form = el.getChild('x', 'jabber:x:data');
        if (!form) throw new StanzaError('bad-request', 'a configure set carries a data form');
        await this.engine.configure(service, iq.from, node, form);
        break;
      }
      case 'delete':
        await this.engine.deleteNode(service, iq.from, node);
        break;
      case 'purge':
        await this.engine.purge(service, iq.from, node);
        break;
      default: {
        const changes = el.getChildren('affiliation').map((a): [string, Affiliation | 'none'] => {
          const affiliation = a.attrs.affiliation as (typeof AFFILIATIONS)[number];
          if (!AFFILIATIONS.includes(affiliation)) throw new StanzaError('bad-request', `no affiliation "${a.attrs.affiliation ?? ''}"`);
          return [jidAttr(a).bare.toString(), affiliation];
        });
        await this.engine.setAffiliations(service, iq.from, node, changes);
      }
    }
    return iq.reply();
  }
}
