// XEP-0215 External Service Discovery (urn:xmpp:extdisco:2): the STUN and TURN services a
// client uses for calls (XEP-0167 over XEP-0176 ICE-UDP), with short-lived TURN credentials in
// the scheme coturn checks (see credentials.ts). Only authenticated local users of the host
// are answered (§3.1, §3.3: anyone else gets forbidden). With no services configured the module
// is silent: no feature in disco#info (§7), and a local user asking gets an empty list.
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { defineModule } from '../../src/module-api/define.js';
import type { IqRequest } from '../../src/module-api/iq.js';
import { StanzaError } from '../../src/stream/errors.js';
import { dateTime, turnCredentials } from './credentials.js';

export const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

const Service = z.strictObject({
  /** stun, turn or turns (TURN over TLS). */
  type: z.enum(['stun', 'turn', 'turns']),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(3478),
  /** udp or tcp; left out of the answer when not set. */
  transport: z.enum(['udp', 'tcp']).optional(),
  /** A human-readable name for the service. */
  name: z.string().optional(),
});
export type ExternalService = z.infer<typeof Service>;

export const ExternalServicesConfig = z.strictObject({
  /** The secret shared with the TURN server (coturn's static-auth-secret); "env:NAME" reads it from the environment. */
  secret: z.string().default(''),
  /** How long handed-out credentials stay valid, in seconds. */
  ttl: z.number().int().min(60).default(86400),
  services: z.array(Service).default([]),
});

/** TURN services carry credentials when a secret is set; STUN needs none. */
function needsCredentials(service: ExternalService, secret: string): boolean {
  return secret !== '' && (service.type === 'turn' || service.type === 'turns');
}

export default defineModule({
  name: 'external_services',
  config: ExternalServicesConfig,
  setup(ctx) {
    const { services, secret, ttl } = ctx.config;
    if (services.length > 0) ctx.feature(NS_EXTDISCO);
    if (secret === '' && services.some((s) => s.type !== 'stun')) {
      ctx.log.warn('TURN services are configured without a secret: clients get no credentials for them');
    }

    const localUser = (iq: IqRequest): string => {
      if (!iq.session || iq.from.domain !== ctx.domain || !iq.from.local) throw new StanzaError('forbidden');
      return iq.from.local;
    };

    const describe = (service: ExternalService, localpart: string): Element => {
      const attrs: Record<string, string> = { type: service.type, host: service.host, port: String(service.port) };
      if (service.transport) attrs.transport = service.transport;
      if (service.name) attrs.name = service.name;
      if (needsCredentials(service, secret)) {
        const creds = turnCredentials(secret, localpart, ttl);
        Object.assign(attrs, { username: creds.username, password: creds.password, expires: dateTime(creds.expires), restricted: 'true' });
      }
      return xml('service', attrs);
    };

    // §3.1 all services, §3.2 the services of one type.
    ctx.iq.get(NS_EXTDISCO, 'services', (iq) => {
      const localpart = localUser(iq);
      const type = iq.payload.attrs.type;
      const attrs: Record<string, string> = { xmlns: NS_EXTDISCO };
      if (type) attrs.type = type;
      const chosen = services.filter((s) => !type || s.type === type);
      return iq.reply(xml('services', attrs, ...chosen.map((s) => describe(s, localpart))));
    });

    // §3.3 credentials for one service, named by host (and type, port when given).
    ctx.iq.get(NS_EXTDISCO, 'credentials', (iq) => {
      const localpart = localUser(iq);
      const wanted = iq.payload.getChild('service');
      if (!wanted?.attrs.host) throw new StanzaError('bad-request', 'a <service/> with a host is needed');
      const { host, type, port } = wanted.attrs;
      const found = services.find((s) => s.host === host && (!type || s.type === type) && (!port || String(s.port) === port) && needsCredentials(s, secret));
      if (!found) throw new StanzaError('item-not-found');
      return iq.reply(xml('credentials', { xmlns: NS_EXTDISCO }, describe(found, localpart)));
    });
  },
});
