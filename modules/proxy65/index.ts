// XEP-0065 SOCKS5 Bytestreams proxy on a domain of its own (proxy.<host> by default): the
// initiator asks it for its network address (streamhost query), target and initiator connect
// over SOCKS5 naming SHA1(SID + initiator JID + target JID), the initiator activates the
// bytestream with an IQ and the proxy relays the bytes between the two connections.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { parseJid, tryParseJid, type Jid } from '../../src/jid.js';
import { defineModule } from '../../src/module-api/define.js';
import { serveDomain } from '../../src/module-api/service-domain.js';
import { StanzaError } from '../../src/stream/errors.js';
import { streamHash } from './hash.js';
import { acquireProxy } from './shared.js';

export const NS_BYTESTREAMS = 'http://jabber.org/protocol/bytestreams';

export const Proxy65Config = z.strictObject({
  /** The service's domain; "{host}" stands for the host's domain. */
  domain: z.string().min(1).default('proxy.{host}'),
  /** The service's name in service discovery. */
  name: z.string().default('SOCKS5 Bytestreams'),
  /** Addresses the SOCKS5 listener binds. */
  interfaces: z.array(z.string()).min(1).default(['0.0.0.0', '::']),
  port: z.number().int().min(0).max(65535).default(5000),
  /** Host name or IP address clients connect to (the streamhost's host); empty: the service's domain. */
  public_host: z.string().default(''),
  /** Port clients connect to; 0: the listener's port. */
  public_port: z.number().int().min(0).max(65535).default(0),
  /** Let users of other servers (over federation) use the proxy too. */
  allow_remote: z.boolean().default(false),
  /** Open SOCKS5 connections from one IP address. */
  max_connections_per_ip: z.number().int().min(1).default(10),
  /** Bytestreams relaying at once. */
  max_transfers: z.number().int().min(1).default(100),
  /** Bytes per second in each direction of one bytestream; 0: no limit. */
  max_rate: z.number().int().min(0).default(0),
  /** Bytes one bytestream may carry (both directions); 0: no limit. */
  max_bytes: z.number().int().min(0).default(0),
  /** Seconds a connection may wait for its activation. */
  activation_timeout: z.number().min(1).default(60),
  /** Seconds an activated bytestream may stay without a byte either way before it is closed; 0: never. */
  idle_timeout: z.number().min(0).default(300),
});

export default defineModule({
  name: 'proxy65',
  config: Proxy65Config,
  async setup(ctx) {
    const config = ctx.config;
    const domain = parseJid(config.domain.replaceAll('{host}', ctx.domain)).toString();
    if (domain.includes('@') || domain.includes('/')) throw new Error(`proxy65.domain: "${domain}" is not a domain`);
    const shared = await acquireProxy(
      config.interfaces,
      config.port,
      {
        maxConnectionsPerIp: config.max_connections_per_ip,
        maxTransfers: config.max_transfers,
        unactivatedMs: config.activation_timeout * 1000,
        idleMs: config.idle_timeout * 1000,
        rate: config.max_rate,
        maxBytes: config.max_bytes,
      },
      ctx.log,
    );
    ctx.onUnload(shared.release);
    const address = { jid: domain, host: config.public_host || domain, port: String(config.public_port || shared.port) };

    const allowed = (from: Jid) => {
      if (from.local === '') throw new StanzaError('forbidden', 'only users may use this proxy');
      if (!config.allow_remote && from.domain !== ctx.domain) throw new StanzaError('forbidden', 'only users of this server may use this proxy');
    };

    const activate = (query: Element, from: Jid): null => {
      allowed(from);
      const sid = query.attrs.sid ?? '';
      const target = tryParseJid(query.getChildText('activate')?.trim() ?? '');
      if (!sid || !target) throw new StanzaError('bad-request', 'activation needs a sid and the target JID');
      const outcome = shared.proxy.activate(streamHash(sid, from, target));
      switch (outcome) {
        case 'activated':
          ctx.log.debug({ initiator: from.toString(), target: target.toString() }, 'bytestream activated');
          return null;
        // The hash includes the sender's JID: anyone but the initiator names no bytestream (§6.3.5).
        case 'not-found':
          throw new StanzaError('item-not-found', 'no bytestream of yours with this sid and target is connected');
        case 'one-side':
          throw new StanzaError('not-allowed', 'only one party is connected');
        case 'active':
          throw new StanzaError('not-allowed', 'the bytestream is active already');
        case 'busy':
          throw new StanzaError('resource-constraint', 'the proxy relays as many bytestreams as it may', 'wait');
      }
    };

    serveDomain(ctx, domain, {
      identity: { category: 'proxy', type: 'bytestreams', name: config.name },
      features: [NS_BYTESTREAMS],
      iq: {
        [`get query ${NS_BYTESTREAMS}`]: (_query, from) => {
          allowed(from);
          return xml('query', { xmlns: NS_BYTESTREAMS }, xml('streamhost', address));
        },
        [`set query ${NS_BYTESTREAMS}`]: activate,
      },
    });
  },
});
