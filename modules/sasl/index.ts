// Authentication: SASL (RFC 6120) and SASL2 (XEP-0388) with Bind2 and FAST, over the
// mechanisms PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 and their -PLUS variants with channel binding.
import { xml } from '@xmpp/xml';
import { z } from 'zod';
import { InternalAuthBackend } from '../../src/auth/backend.js';
import { defineModule } from '../../src/module-api/define.js';
import { NS } from '../../src/xml/namespaces.js';
import { AuthAttempts } from './attempts.js';
import { supportedChannelBindings } from './channel-binding.js';
import type { MechanismFactory } from './mechanism.js';
import { plainFactory } from './plain.js';
import { scramFactory } from './scram.js';
import { registerSasl1 } from './sasl1.js';
import { registerSasl2, Sasl2Extensions } from './sasl2.js';
import { Bind2Features, registerBind2 } from './bind2.js';
import { Bind2Key } from './service.js';
import { FastTokens, registerFast } from './fast.js';
import { FastTokenStore } from './fast-store.js';

const MECHANISMS = ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] as const;

export const SaslConfig = z.strictObject({
  /** Mechanisms offered, strongest first. */
  mechanisms: z.array(z.enum(MECHANISMS)).default([...MECHANISMS]),
  /** Lifetime of a FAST token (XEP-0484), seconds; tokens are rotated when half of it is gone. */
  fast_token_ttl: z
    .number()
    .int()
    .min(60)
    .default(14 * 24 * 3600),
});

export default defineModule({
  name: 'sasl',
  config: SaslConfig,
  setup(ctx) {
    const c2s = ctx.server.config.c2s;
    const backend = new InternalAuthBackend(ctx.server.accounts.store, {
      iterationsFor: (host) => ctx.server.config.hostOptions.get(host)?.accounts.scram_iterations ?? 4096,
    });
    const plusOffered = (stream: Parameters<MechanismFactory['available']>[0]) =>
      ctx.config.mechanisms.some((m) => m.endsWith('-PLUS')) && supportedChannelBindings(stream.tlsSocket).length > 0;
    const all: Record<(typeof MECHANISMS)[number], MechanismFactory> = {
      'SCRAM-SHA-256-PLUS': scramFactory('SCRAM-SHA-256', true, backend, plusOffered),
      'SCRAM-SHA-1-PLUS': scramFactory('SCRAM-SHA-1', true, backend, plusOffered),
      'SCRAM-SHA-256': scramFactory('SCRAM-SHA-256', false, backend, plusOffered),
      'SCRAM-SHA-1': scramFactory('SCRAM-SHA-1', false, backend, plusOffered),
      PLAIN: plainFactory(backend, c2s.allow_plain_without_tls),
    };
    const mechanisms = ctx.config.mechanisms.map((name) => all[name]);
    const attempts = new AuthAttempts(
      ctx.server.live.counters,
      { failuresPerIpPerMinute: c2s.auth_failures_per_ip_per_minute, failureDelayMs: c2s.auth_failure_delay * 1000 },
      ctx.log,
      ctx.server.counters,
    );

    // XEP-0440: which channel-binding types this connection supports.
    ctx.streamFeature({
      stage: 'pre-auth',
      advertise: (stream) => {
        const types = supportedChannelBindings(stream.tlsSocket);
        if (types.length === 0) return undefined;
        return xml('sasl-channel-binding', { xmlns: NS.SASL_CB }, ...types.map((type) => xml('channel-binding', { type })));
      },
    });
    registerSasl1(ctx, mechanisms, attempts);

    // XEP-0388 SASL2, with XEP-0386 Bind 2 and XEP-0484 FAST inline.
    const sasl2 = new Sasl2Extensions();
    const bind2 = new Bind2Features();
    const fastStore = new FastTokenStore(ctx.server.storage);
    registerSasl2(ctx, mechanisms, attempts, sasl2);
    registerFast(ctx, sasl2, new FastTokens(fastStore, ctx.config.fast_token_ttl * 1000));
    registerBind2(ctx, sasl2, bind2);
    ctx.provide(Bind2Key, bind2);
    ctx.every(3600_000, () => {
      fastStore.purgeExpired(ctx.domain).catch((err: unknown) => ctx.log.warn({ err }, 'purging expired FAST tokens failed'));
    });
  },
});
