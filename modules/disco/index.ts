// XEP-0030 Service Discovery of the server itself: its identities and the features modules add.
import { xml } from '@xmpp/xml';
import { defineModule } from '../../src/module-api/define.js';
import { StanzaError } from '../../src/stream/errors.js';
import { NS } from '../../src/xml/namespaces.js';

export default defineModule({
  name: 'disco',
  setup(ctx) {
    ctx.feature(NS.DISCO_INFO);
    ctx.feature(NS.DISCO_ITEMS);
    ctx.iq.get(NS.DISCO_INFO, 'query', (iq) => {
      const node = iq.payload.attrs.node;
      if (node) throw new StanzaError('item-not-found', `no node ${node}`);
      const host = ctx.host;
      return iq.reply(
        xml(
          'query',
          { xmlns: NS.DISCO_INFO },
          ...host.discoIdentities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name })),
          ...[...host.discoFeatures].sort().map((f) => xml('feature', { var: f })),
          ...host.discoForms.map((f) => f.clone()),
        ),
      );
    });
    ctx.iq.get(NS.DISCO_ITEMS, 'query', (iq) => {
      if (iq.payload.attrs.node) throw new StanzaError('item-not-found');
      return iq.reply(xml('query', { xmlns: NS.DISCO_ITEMS }));
    });
  },
});
