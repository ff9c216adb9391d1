// PubSub (XEP-0060) as the Personal Eventing Protocol (XEP-0163): every account's bare JID is a
// pubsub service its account owns (disco identity pubsub/pep), for OMEMO device lists and
// bundles, avatars (XEP-0084), bookmarks (XEP-0402) and the like. Publish with auto-create and
// publish-options (XEP-0223), retract, retrieve, create/configure/delete/purge, subscribe,
// affiliations; notifications filtered by entity capabilities (notify.ts, pep.ts).
//
// Files: engine.ts (the operations and their rules), protocol.ts (IQs), node-config.ts (node
// options and forms), access.ts (access models), notify.ts (who gets events), pep.ts (PEP rules,
// last items on caps), store.ts (tables on SQLite and PostgreSQL), config.ts (limits).
import { defineModule } from '../../src/module-api/define.js';
import { CapsKey } from '../caps/service.js';
import { DiscoKey } from '../disco/service.js';
import { RosterKey } from '../roster/service.js';
import { PubsubConfig } from './config.js';
import { PubsubEngine } from './engine.js';
import { pepNotifier } from './notify.js';
import { NS_OWNER, NS_PUBSUB } from './ns.js';
import { pepRules, sendLastItems } from './pep.js';
import { PubsubProtocol } from './protocol.js';
import { PubsubStore, pubsubMigrations } from './store.js';

/** The pubsub features (XEP-0060 §10) this service implements, advertised on every account. */
const FEATURES = [
  'access-open',
  'access-presence',
  'access-roster',
  'access-whitelist',
  'auto-create',
  'auto-subscribe',
  'config-node',
  'create-and-configure',
  'create-nodes',
  'delete-items',
  'delete-nodes',
  'filtered-notifications',
  'instant-nodes',
  'item-ids',
  'last-published',
  'modify-affiliations',
  'persistent-items',
  'presence-notifications',
  'publish',
  'publish-options',
  'purge-nodes',
  'retract-items',
  'retrieve-affiliations',
  'retrieve-default',
  'retrieve-items',
  'retrieve-subscriptions',
  'subscribe',
];

export default defineModule({
  name: 'pubsub',
  depends: ['disco', 'roster', 'caps'],
  config: PubsubConfig,
  migrations: pubsubMigrations,
  setup(ctx) {
    const roster = ctx.use(RosterKey);
    const caps = ctx.use(CapsKey);
    const store = new PubsubStore(ctx.server.storage);
    const notifier = pepNotifier({
      router: ctx.server.router,
      sessions: ctx.server.sessions,
      roster,
      caps: () => caps,
      store,
      isLocal: (domain) => ctx.server.hosts.has(domain),
    });
    const engine = new PubsubEngine(store, ctx.config, pepRules(roster), notifier);
    const protocol = new PubsubProtocol(engine);

    ctx.accountIdentity({ category: 'pubsub', type: 'pep' });
    ctx.accountFeature(NS_PUBSUB);
    for (const feature of FEATURES) ctx.accountFeature(`${NS_PUBSUB}#${feature}`);

    ctx.iq.get(NS_PUBSUB, 'pubsub', (iq) => protocol.get(iq), { to: 'bare' });
    ctx.iq.set(NS_PUBSUB, 'pubsub', (iq) => protocol.set(iq), { to: 'bare' });
    ctx.iq.get(NS_OWNER, 'pubsub', (iq) => protocol.ownerGet(iq), { to: 'self' });
    ctx.iq.set(NS_OWNER, 'pubsub', (iq) => protocol.ownerSet(iq), { to: 'self' });

    // disco#items of an account: its nodes the requester may read (XEP-0163 §6.2).
    ctx.onUnload(
      ctx.use(DiscoKey).addAccountItems(async (user, requester, node) => {
        if (node !== undefined) return undefined;
        const visible = [];
        for (const [name, config] of await store.nodes(user.toString())) {
          const allowed = await engine.checkAccess(user, name, config, requester).then(
            () => true,
            () => false,
          );
          if (allowed) visible.push({ jid: user.toString(), node: name });
        }
        return visible;
      }),
    );

    ctx.onUnload(
      caps.onFeatures((session, features) => {
        if (session.jid?.domain !== ctx.domain) return;
        sendLastItems(engine, roster, ctx.domain, session, features, ctx.log).catch((err: unknown) => ctx.log.warn({ err }, 'last published items failed'));
      }),
    );
  },
});
