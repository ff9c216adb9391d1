// XEP-0199 XMPP Ping: the server answers pings addressed to it, and asks an idle client whether
// it is still there (§4.1 server-to-client ping). The ask is an ordinary IQ through the router,
// so it travels the outbound pipeline like every stanza: stream management counts it (the
// client's ack of it is valid), CSI lets it pass, a kept session queues it.
import { xml } from '@xmpp/xml';
import { defineModule } from '../../src/module-api/define.js';
import { StreamError } from '../../src/stream/errors.js';
import { streamId } from '../../src/stream/xml-stream.js';
import { NS } from '../../src/xml/namespaces.js';

export default defineModule({
  name: 'ping',
  setup(ctx) {
    ctx.feature(NS.PING);
    ctx.iq.get(NS.PING, 'ping', (iq) => iq.reply());

    // c2s.idle_ping_interval seconds without a byte from the client: ping it; nothing back within
    // c2s.idle_ping_timeout seconds (no reply, nor anything else) ends the stream.
    ctx.hook('session/idle', async ({ session }) => {
      if (!session.jid || session.hibernating) return;
      const askedAt = Date.now();
      const ping = xml('iq', { type: 'get', id: `ping-${streamId()}`, from: ctx.domain, to: session.jid.toString() }, xml('ping', { xmlns: NS.PING }));
      const reply = await ctx.server.router.request(ping, ctx.server.config.c2s.idle_ping_timeout * 1000);
      if (reply || session.closed || session.hibernating || session.lastReceivedAt >= askedAt) return;
      session.close(new StreamError('connection-timeout', 'no answer to a ping'));
    });
  },
});
