// Bookmarks conversion (XEP-0402 §5.3, what XEP-0411 did before it): a client that keeps its
// chatroom bookmarks the old way (XEP-0048 <storage xmlns="storage:bookmarks"/> in private XML
// storage, XEP-0049) and one that uses Bookmarks 2 (PEP node urn:xmpp:bookmarks:1) see the same
// bookmarks. The PEP node is the one copy: private XML storage of storage:bookmarks reads it and
// writes it (publishing what is new or changed, retracting what is gone, so Bookmarks 2 clients
// are notified). Bookmarks an account kept in private storage before this module was on are
// moved to PEP the first time they are read or written. Advertised as urn:xmpp:bookmarks:1#compat.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import { PrivateKey } from '../private/service.js';
import { PepKey, type PepService } from '../pubsub/pep-api.js';
import { itemsFromStorage, keepExtensions, NS_BOOKMARKS2, NS_LEGACY, storageFromItems } from './convert.js';

/** XEP-0402 §3: the node's configuration, as its clients publish it. */
const NODE_OPTIONS = {
  'pubsub#persist_items': 'true',
  'pubsub#max_items': 'max',
  'pubsub#send_last_published_item': 'never',
  'pubsub#access_model': 'whitelist',
};

/** Makes the PEP node hold exactly the bookmarks of `storage`. */
async function write(pep: PepService, account: Jid, storage: Element): Promise<void> {
  const previous = new Map((await pep.items(account, NS_BOOKMARKS2))?.map((i) => [i.id, i]) ?? []);
  const next = itemsFromStorage(storage);
  for (const item of next) {
    const old = previous.get(item.id);
    const converted = keepExtensions(item, old);
    if (old && old.payload.toString() === converted.payload.toString()) continue;
    await pep.publish(account, NS_BOOKMARKS2, converted, NODE_OPTIONS);
  }
  const kept = new Set(next.map((i) => i.id));
  for (const id of previous.keys()) if (!kept.has(id)) await pep.retract(account, NS_BOOKMARKS2, id);
}

export default defineModule({
  name: 'bookmarks',
  depends: ['private', 'pubsub'],
  setup(ctx) {
    const pep = ctx.use(PepKey);
    ctx.accountFeature(`${NS_BOOKMARKS2}#compat`);
    ctx.onUnload(
      ctx.use(PrivateKey).redirect(NS_LEGACY, 'storage', {
        async get(account, stored) {
          const items = await pep.items(account, NS_BOOKMARKS2);
          if (items === undefined && stored && stored.getChildren('conference').length > 0) {
            await write(pep, account, stored);
            return stored;
          }
          return storageFromItems(items ?? []);
        },
        set: (account, storage) => write(pep, account, storage),
      }),
    );
  },
});
