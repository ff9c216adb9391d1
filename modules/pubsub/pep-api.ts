// What the pubsub module offers other modules (ctx.use(PepKey)): an account's own PEP nodes,
// read and written as the account itself, with the same rules, limits and notifications as
// when the account's client does it (bookmarks conversion, avatar conversion).
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';
import { StanzaError } from '../../src/stream/errors.js';
import { parseElement } from '../../src/xml/parse.js';
import type { Logger } from '../../src/log.js';
import type { PubsubEngine } from './engine.js';
import type { StoredItem } from './store.js';
import { PUBLISH_OPTIONS } from './ns.js';

export interface PepItem {
  id: string;
  payload: Element;
}

export interface PepService {
  /** The items of one of the account's nodes, oldest first; undefined when it has no such node. */
  items(account: Jid, node: string): Promise<PepItem[] | undefined>;
  /** Publishes as the account; `options` are publish-options (XEP-0223), used when the node is created by it. */
  publish(account: Jid, node: string, item: PepItem, options: Record<string, string>): Promise<void>;
  /** Retracts an item (subscribers are told); false when there was none. */
  retract(account: Jid, node: string, id: string): Promise<boolean>;
  /** Called after each item published to one of an account's nodes, by its clients or through this service. Returns the undo. */
  onPublish(node: string, listener: (account: Jid, item: PepItem) => Promise<void>): () => void;
}

export const PepKey = serviceKey<PepService>('pep');

const optionsForm = (options: Record<string, string>) =>
  xml(
    'x',
    { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, PUBLISH_OPTIONS)),
    ...Object.entries(options).map(([name, value]) => xml('field', { var: name }, xml('value', {}, value))),
  );

const isNotFound = (err: unknown) => err instanceof StanzaError && err.condition === 'item-not-found';

export function pepService(engine: PubsubEngine, log: Logger): PepService {
  return {
    onPublish(node, listener) {
      const wrapped = async (service: Jid, published: string, item: StoredItem) => {
        if (published !== node) return;
        await listener(service, { id: item.id, payload: parseElement(item.payload) }).catch((err: unknown) => log.warn({ err, node }, 'a PEP publish listener failed'));
      };
      engine.published.add(wrapped);
      return () => void engine.published.delete(wrapped);
    },
    async items(account, node) {
      if (!(await engine.store.config(account.toString(), node))) return undefined;
      const items = await engine.items(account, account, node, undefined, undefined);
      return items.map((i) => ({ id: i.id, payload: parseElement(i.payload) }));
    },
    async publish(account, node, item, options) {
      // Options only create a node: on an existing one they would be preconditions to fail.
      const exists = (await engine.store.config(account.toString(), node)) !== undefined;
      await engine.publish(account, account, node, xml('item', { id: item.id }, item.payload), exists ? undefined : optionsForm(options));
    },
    async retract(account, node, id) {
      try {
        await engine.retract(account, account, node, id, true);
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
  };
}
