// The PubSub engine (XEP-0060): nodes, items, subscriptions and affiliations of a service, with
// the rules of who may do what. It speaks in elements and StanzaErrors but knows nothing of IQs
// (protocol.ts reads and answers them) nor of who gets a notification (the Notifier's job).
// A service is addressed by its JID; on PEP (XEP-0163) that is an account's bare JID, and the
// account owns every node of it; on the general service (pubsub.<host>) each node has owners of
// its own (affiliations: its creator, and whom the owners add).
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { StanzaError } from '../../src/stream/errors.js';
import { detach } from '../../src/xml/clone.js';
import { parseElement } from '../../src/xml/parse.js';
import { accessError, type Relation } from './access.js';
import type { PubsubConfig } from './config.js';
import { applyConfigForm, applyPublishOptions, checkPreconditions, itemLimit, type NodeConfig } from './node-config.js';
import { NS_ERRORS, NS_EVENT, pubsubError } from './ns.js';
import type { RsmRequest } from '../../src/xml/rsm.js';
import type { Affiliation, ItemPage, NodeAccount, PubsubStore, StoredItem } from './store.js';

/** What differs between services: defaults, who owns them, and what the requester is to the owner. */
export interface ServiceRules {
  defaults: NodeConfig;
  /** The account the service belongs to (its nodes go with it), if any. */
  account(service: Jid): NodeAccount | undefined;
  /** Whether `who` owns the whole service (configures, publishes, deletes anywhere). */
  isOwner(service: Jid, who: Jid): boolean;
  /** Whether `who` may create nodes (also by publishing to a node that does not exist). */
  mayCreate(service: Jid, who: Jid): boolean;
  /** Whether nodes have owners of their own (affiliations), not only the service's owner (PEP). */
  nodeOwners: boolean;
  /** The requester's roster item on the owner's roster (PEP), for the access models. */
  rosterItem(service: Jid, who: Jid): Promise<Relation['rosterItem']>;
}

/** Who gets the events of a node. */
export interface Notifier {
  /** `event` (a pubsub#event <event/>) to everyone who gets the node's notifications. */
  broadcast(service: Jid, node: string, config: NodeConfig, event: Element): Promise<void>;
  /** `event` to one entity (a new subscriber's last item). */
  send(service: Jid, to: Jid, event: Element): Promise<void>;
}

export const itemElement = (item: StoredItem): Element => xml('item', { id: item.id, publisher: item.publisher }, parseElement(item.payload));
const itemsEvent = (node: string, ...children: Element[]) => xml('event', { xmlns: NS_EVENT }, xml('items', { node }, ...children));

const mayPublish = (relation: Relation) => relation.owner || relation.affiliation === 'publisher';
const notFound = (node: string) => new StanzaError('item-not-found', `no node ${node}`);

export class PubsubEngine {
  /** The last item of nodes that do not persist items, for the last-published rule. */
  private readonly transient = new Map<string, StoredItem>();

  readonly defaults: NodeConfig;
  /** Called after each publish is stored and notified (services built on PEP nodes); must not throw. */
  readonly published = new Set<(service: Jid, node: string, item: StoredItem) => Promise<void>>();

  constructor(
    readonly store: PubsubStore,
    private readonly limits: PubsubConfig,
    private readonly rules: ServiceRules,
    private readonly notifier: Notifier,
  ) {
    this.defaults = rules.defaults;
  }

  private key(service: Jid, node: string) {
    return `${service.toString()}\n${node}`;
  }

  async config(service: Jid, node: string): Promise<NodeConfig> {
    const config = await this.store.config(service.toString(), node);
    if (!config) throw notFound(node);
    return config;
  }

  private async affiliation(service: Jid, node: string, who: Jid): Promise<Affiliation | undefined> {
    const all = await this.store.affiliations(service.toString(), node);
    return all.find((a) => a.jid === who.bare.toString())?.affiliation;
  }

  /** What `who` is to a node of `service`. */
  async relation(service: Jid, node: string, who: Jid): Promise<Relation> {
    if (this.rules.isOwner(service, who)) return { owner: true };
    const [rosterItem, affiliation] = await Promise.all([this.rules.rosterItem(service, who), this.affiliation(service, node, who)]);
    return { owner: affiliation === 'owner', rosterItem, affiliation };
  }

  /** The service's nodes (with their configurations) that `who` may read. */
  async visibleNodes(service: Jid, who: Jid): Promise<[string, NodeConfig][]> {
    const visible: [string, NodeConfig][] = [];
    for (const [node, config] of await this.store.nodes(service.toString())) {
      if (!accessError(config, await this.relation(service, node, who))) visible.push([node, config]);
    }
    return visible;
  }

  /** Throws the access model's error unless `who` may read the node. */
  async checkAccess(service: Jid, node: string, config: NodeConfig, who: Jid): Promise<void> {
    const error = accessError(config, await this.relation(service, node, who));
    if (error) throw error;
  }

  /** The node's configuration, when `who` owns the node (or the service); else forbidden (or item-not-found). */
  private async requireOwner(service: Jid, node: string, who: Jid): Promise<NodeConfig> {
    const config = await this.config(service, node);
    if (!(await this.relation(service, node, who)).owner) throw new StanzaError('forbidden', 'only an owner of this node may do that');
    return config;
  }

  private async create(service: Jid, who: Jid, node: string, config: NodeConfig): Promise<void> {
    const owner = this.rules.nodeOwners ? who.bare.toString() : undefined;
    const outcome = await this.store.create(service.toString(), node, config, this.rules.account(service), this.limits.max_nodes, owner);
    if (outcome === 'exists') throw new StanzaError('conflict', `the node ${node} exists already`);
    if (outcome === 'full') throw new StanzaError('not-allowed', `a service may have at most ${this.limits.max_nodes} nodes`);
  }

  /** Creates a node for a publish (with its publish-options); when a concurrent publish made it first, that node's. */
  private async autoCreate(service: Jid, who: Jid, node: string, options: Element | undefined): Promise<NodeConfig> {
    const config = options ? applyPublishOptions(this.rules.defaults, options, this.limits.max_items) : this.rules.defaults;
    try {
      await this.create(service, who, node, config);
      return config;
    } catch (err) {
      if (!(err instanceof StanzaError && err.condition === 'conflict')) throw err;
      // Someone else's node, created meanwhile: publishing to it takes its rules.
      if (!mayPublish(await this.relation(service, node, who))) throw new StanzaError('forbidden', 'only the owner and publishers may publish here');
      const existing = await this.config(service, node);
      if (options) checkPreconditions(existing, options, this.limits.max_items);
      return existing;
    }
  }

  /** Creates a node (a name is made up when absent: an instant node); returns its name. */
  async createNode(service: Jid, who: Jid, node: string | undefined, configure: Element | undefined): Promise<string> {
    if (!this.rules.mayCreate(service, who)) throw new StanzaError('forbidden', 'you may not create nodes here');
    const name = node ?? randomBytes(8).toString('hex');
    const form = configure?.getChild('x', 'jabber:x:data');
    await this.create(service, who, name, form ? applyConfigForm(this.rules.defaults, form, this.limits.max_items) : this.rules.defaults);
    return name;
  }

  async publish(service: Jid, who: Jid, node: string, item: Element | undefined, options: Element | undefined): Promise<string> {
    let config = await this.store.config(service.toString(), node);
    const creating = !config && this.rules.mayCreate(service, who);
    if (!config && !creating) throw notFound(node);
    if (!creating && !mayPublish(await this.relation(service, node, who))) throw new StanzaError('forbidden', 'only the owner and publishers may publish here');
    if (!item) throw pubsubError('bad-request', 'item-required', 'a publish needs an <item/>');
    const payloads = item.getChildElements();
    if (payloads.length !== 1) throw pubsubError('bad-request', payloads.length === 0 ? 'payload-required' : 'invalid-payload', 'an item has exactly one payload element');
    const payload = detach(payloads[0]!).toString();
    const size = Buffer.byteLength(payload, 'utf8');
    if (size > this.limits.max_item_size)
      throw pubsubError('not-acceptable', 'payload-too-big', `the payload is ${size} bytes; this server accepts at most ${this.limits.max_item_size}`);

    if (config && options) checkPreconditions(config, options, this.limits.max_items);
    if (!config) {
      config = await this.autoCreate(service, who, node, options);
    }
    const stored: StoredItem = { id: item.attrs.id || randomBytes(12).toString('hex'), publisher: who.bare.toString(), payload };
    const keep = itemLimit(config, this.limits.max_items);
    if (keep > 0) await this.store.publish(service.toString(), node, stored, keep);
    else this.transient.set(this.key(service, node), stored);
    await this.notifier.broadcast(service, node, config, itemsEvent(node, itemElement(stored)));
    for (const listener of this.published) await listener(service, node, stored);
    return stored.id;
  }

  async retract(service: Jid, who: Jid, node: string, id: string | undefined, notify: boolean): Promise<void> {
    if (!mayPublish(await this.relation(service, node, who))) throw new StanzaError('forbidden', 'only the owner and publishers may retract here');
    const config = await this.config(service, node);
    if (!id) throw pubsubError('bad-request', 'item-required', 'a retract needs an <item id=.../>');
    if (!(await this.store.retract(service.toString(), node, id))) throw new StanzaError('item-not-found', `no item ${id}`);
    if (notify || config.notify_retract) await this.notifier.broadcast(service, node, config, itemsEvent(node, xml('retract', { id })));
  }

  /**
   * Whether `who` may read the node's items: true, or false for an account's own node that does
   * not exist yet (it reads as empty: PEP creates nodes on first publish, and Profanity 0.13
   * reads its own OMEMO device list before it publishes one and does not go on after an
   * item-not-found); else the access model's error, or item-not-found.
   */
  private async mayRead(service: Jid, who: Jid, node: string): Promise<boolean> {
    const config = await this.store.config(service.toString(), node);
    if (!config && this.rules.account(service) && this.rules.isOwner(service, who)) return false;
    if (!config) throw notFound(node);
    await this.checkAccess(service, node, config, who);
    return true;
  }

  /** Items `who` may read: those with `ids`, or the newest `max`, or all (oldest first). */
  async items(service: Jid, who: Jid, node: string, ids: string[] | undefined, max: number | undefined): Promise<StoredItem[]> {
    if (!(await this.mayRead(service, who, node))) return [];
    return this.store.items(service.toString(), node, { ids, max });
  }

  /** A page of the items `who` may read (XEP-0059 result set management). */
  async itemsPage(service: Jid, who: Jid, node: string, rsm: RsmRequest): Promise<ItemPage> {
    if (!(await this.mayRead(service, who, node))) return { items: [], index: undefined, count: 0 };
    const page = await this.store.page(service.toString(), node, rsm, this.limits.max_items);
    if (!page) throw new StanzaError('item-not-found', 'the result set has no such item');
    return page;
  }

  /** The node's last published item, if it has one. */
  async lastItem(service: Jid, node: string): Promise<StoredItem | undefined> {
    return this.transient.get(this.key(service, node)) ?? (await this.store.items(service.toString(), node, { max: 1 }))[0];
  }

  /** The last item as an event for `to` (a new subscriber, a contact coming online). */
  async sendLast(service: Jid, node: string, to: Jid): Promise<void> {
    const last = await this.lastItem(service, node);
    if (last) await this.notifier.send(service, to, itemsEvent(node, itemElement(last)));
  }

  async configure(service: Jid, who: Jid, node: string, form: Element | undefined): Promise<NodeConfig> {
    const current = await this.requireOwner(service, node, who);
    if (!form) return current;
    const next = applyConfigForm(current, form, this.limits.max_items);
    await this.store.configure(service.toString(), node, next, itemLimit(next, this.limits.max_items));
    return next;
  }

  async deleteNode(service: Jid, who: Jid, node: string): Promise<void> {
    const config = await this.requireOwner(service, node, who);
    if (config.notify_delete) await this.notifier.broadcast(service, node, config, xml('event', { xmlns: NS_EVENT }, xml('delete', { node })));
    await this.store.delete(service.toString(), node);
    this.transient.delete(this.key(service, node));
  }

  async purge(service: Jid, who: Jid, node: string): Promise<void> {
    const config = await this.requireOwner(service, node, who);
    await this.store.purge(service.toString(), node);
    this.transient.delete(this.key(service, node));
    await this.notifier.broadcast(service, node, config, xml('event', { xmlns: NS_EVENT }, xml('purge', { node })));
  }

  /** Subscribes `jid` (the requester's own bare or full JID); returns the subscription id. */
  async subscribe(service: Jid, who: Jid, node: string, jid: Jid): Promise<string> {
    if (!jid.bare.equals(who.bare)) throw pubsubError('bad-request', 'invalid-jid', "one may subscribe only one's own JID");
    const config = await this.config(service, node);
    await this.checkAccess(service, node, config, who);
    const subid = await this.store.subscribe(service.toString(), node, jid.toString(), randomBytes(8).toString('hex'));
    if (config.send_last_published_item !== 'never') await this.sendLast(service, node, jid);
    return subid;
  }

  async unsubscribe(service: Jid, who: Jid, node: string, jid: Jid): Promise<void> {
    if (!jid.bare.equals(who.bare)) throw pubsubError('bad-request', 'invalid-jid', "one may unsubscribe only one's own JID");
    await this.config(service, node);
    if (!(await this.store.unsubscribe(service.toString(), node, jid.toString()))) {
      throw new StanzaError('unexpected-request', 'there is no such subscription', 'cancel', xml('not-subscribed', { xmlns: NS_ERRORS }));
    }
  }

  /** The requester's own subscriptions (of one node, or all). */
  async subscriptionsOf(service: Jid, who: Jid, node: string | undefined) {
    const all = await this.store.subscriptions(service.toString(), node);
    return all.filter((s) => s.jid === who.bare.toString() || s.jid.startsWith(`${who.bare.toString()}/`));
  }

  /** The requester's own affiliations: every node when it owns the service (PEP). */
  async affiliationsOf(service: Jid, who: Jid, node: string | undefined): Promise<{ node: string; affiliation: Affiliation }[]> {
    if (!this.rules.nodeOwners && this.rules.isOwner(service, who)) {
      const nodes = [...(await this.store.nodes(service.toString())).keys()].filter((n) => node === undefined || n === node);
      return nodes.map((n) => ({ node: n, affiliation: 'owner' }));
    }
    const all = await this.store.affiliations(service.toString(), node);
    return all.filter((a) => a.jid === who.bare.toString()).map((a) => ({ node: a.node, affiliation: a.affiliation }));
  }

  /** Owner: the node's explicit subscriptions. */
  async nodeSubscriptions(service: Jid, who: Jid, node: string) {
    await this.requireOwner(service, node, who);
    return this.store.subscriptions(service.toString(), node);
  }

  /** Owner: the node's affiliations (on PEP the account's own first). */
  async nodeAffiliations(service: Jid, who: Jid, node: string): Promise<{ jid: string; affiliation: Affiliation }[]> {
    await this.requireOwner(service, node, who);
    const stored = await this.store.affiliations(service.toString(), node);
    return this.rules.nodeOwners ? stored : [{ jid: service.bare.toString(), affiliation: 'owner' }, ...stored];
  }

  /** Owner (XEP-0060 §8.8.2): subscribes or unsubscribes others ('subscribed' or 'none'). */
  async setSubscriptions(service: Jid, who: Jid, node: string, changes: [Jid, 'subscribed' | 'none'][]): Promise<void> {
    await this.requireOwner(service, node, who);
    for (const [jid, state] of changes) {
      if (state === 'none') await this.store.unsubscribe(service.toString(), node, jid.toString());
      else await this.store.subscribe(service.toString(), node, jid.toString(), randomBytes(8).toString('hex'));
    }
  }

  async setAffiliations(service: Jid, who: Jid, node: string, changes: [string, Affiliation | 'none'][]): Promise<void> {
    await this.requireOwner(service, node, who);
    if (!this.rules.nodeOwners && changes.some(([jid, a]) => jid === service.bare.toString() || a === 'owner')) {
      throw new StanzaError('not-acceptable', 'the owner of a PEP service is its account; owners cannot be added or removed');
    }
    if (this.rules.nodeOwners) {
      const after = new Map((await this.store.affiliations(service.toString(), node)).map((a) => [a.jid, a.affiliation as string]));
      for (const [jid, a] of changes) after.set(jid, a);
      if (![...after.values()].includes('owner')) throw new StanzaError('not-acceptable', 'a node keeps at least one owner');
    }
    await this.store.setAffiliations(service.toString(), node, changes);
  }
}
