// XEP-0199 XMPP Ping: the server answers pings addressed to it.
import { defineModule } from '../../src/module-api/define.js';
import { NS } from '../../src/xml/namespaces.js';

export default defineModule({
  name: 'ping',
  setup(ctx) {
    ctx.feature(NS.PING);
    ctx.iq.get(NS.PING, 'ping', (iq) => iq.reply());
  },
});
