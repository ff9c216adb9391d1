// PubSub (XEP-0060) as the Personal Eventing Protocol (XEP-0163): every account's bare JID is a
// pubsub service its account owns (disco identity pubsub/pep), for OMEMO device lists and
// bundles, avatars (XEP-0084), bookmarks (XEP-0402) and the like. Publish with auto-create and
// publish-options (XEP-0223), retract, retrieve, create/configure/delete/purge, subscribe,
// affiliations; notifications filtered by entity capabilities (notify.ts, pep.ts). The same
// engine serves the general service at pubsub.<host> (service.ts): nodes of no account, owned
// by their creators, open by default, with explicit subscriptions.
//
// Files: engine.ts (the operations and their rules), protocol.ts (IQs), node-config.ts (node
// options and forms), access.ts (access models), notify.ts (who gets events), pep.ts (PEP rules,
// last items on caps), service.ts (the general service), features.ts (disco features of each),
// store.ts (tables on SQLite and PostgreSQL), config.ts (options).
import { parseJid } from '../../src/jid.js';
import { defineModule, type ModuleContext } from '../../src/module-api/define.js';
import { CapsKey } from '../caps/service.js';
import { DiscoKey } from '../disco/service.js';
import { RosterKey } from '../roster/service.js';
import { PubsubConfig } from './config.js';
import { PubsubEngine } from './engine.js';
import { PEP_FEATURES } from './features.js';
import { pepNotifier, subscriberNotifier } from './notify.js';
import { NS_OWNER, NS_PUBSUB } from './ns.js';
import { PepKey, pepService } from './pep-api.js';
import { pepRules, sendLastItems, sendLastItemsToRemote } from './pep.js';
import { PubsubProtocol } from './protocol.js';
import { serviceHandler, serviceRules } from './service.js';
import { PubsubStore, pubsubMigrations } from './store.js';

/** The general service on its own domain (service.ts), with an engine of its own over the same store. */
function startService(ctx: ModuleContext<PubsubConfig>, store: PubsubStore): void {
  const domain = parseJid(ctx.config.service.replaceAll('{host}', ctx.domain)).toString();
  if (domain.includes('@') || domain.includes('/')) throw new Error(`pubsub.service: "${domain}" is not a domain`);
  const rules = serviceRules({ host: ctx.domain, creation: ctx.config.node_creation, admins: { has: (jid) => ctx.host.options.admins.includes(jid) } });
  const router = ctx.server.router;
  const engine = new PubsubEngine(store, { ...ctx.config, max_nodes: ctx.config.service_max_nodes }, rules, subscriberNotifier(router, store));
  const handler = serviceHandler({ domain, name: ctx.config.service_name, engine, protocol: new PubsubProtocol(engine), router });
  ctx.onUnload(router.addDomain(domain, handler));
  ctx.discoItem({ jid: domain, name: ctx.config.service_name });
}

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
    });
    const engine = new PubsubEngine(store, ctx.config, pepRules(roster), notifier);
    const protocol = new PubsubProtocol(engine);
    ctx.provide(PepKey, pepService(engine, ctx.log));

    ctx.accountIdentity({ category: 'pubsub', type: 'pep' });
    for (const feature of PEP_FEATURES) ctx.accountFeature(feature);

    ctx.iq.get(NS_PUBSUB, 'pubsub', (iq) => protocol.get(iq), { to: 'bare' });
    ctx.iq.set(NS_PUBSUB, 'pubsub', (iq) => protocol.set(iq), { to: 'bare' });
    ctx.iq.get(NS_OWNER, 'pubsub', (iq) => protocol.ownerGet(iq), { to: 'self' });
    ctx.iq.set(NS_OWNER, 'pubsub', (iq) => protocol.ownerSet(iq), { to: 'self' });

    // disco#items of an account: its nodes the requester may read (XEP-0163 §6.2).
    ctx.onUnload(
      ctx.use(DiscoKey).addAccountItems(async (user, requester, node) => {
        if (node !== undefined) return undefined;
        return (await engine.visibleNodes(user, requester)).map(([name]) => ({ jid: user.toString(), node: name }));
      }),
    );

    if (ctx.config.service !== '') startService(ctx, store);

    ctx.onUnload(
      caps.onFeatures((session, features) => {
        if (session.jid?.domain !== ctx.domain) return;
        sendLastItems(engine, roster, ctx.domain, session, features, ctx.log).catch((err: unknown) => ctx.log.warn({ err }, 'last published items failed'));
      }),
    );
    ctx.onUnload(
      caps.onRemoteFeatures((remote, account, features) => {
        if (account.domain !== ctx.domain) return;
        sendLastItemsToRemote(engine, roster, account, remote, features, ctx.log).catch((err: unknown) => ctx.log.warn({ err }, 'last published items failed'));
      }),
    );
  },
});
