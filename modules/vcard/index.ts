// XEP-0054 vcard-temp: a user sets and gets their own vCard (an IQ with no 'to', or to their
// bare JID) and gets anyone's from their bare JID; the server answers on the account's behalf.
//
// - No vCard of one's own: an empty <vCard/> result (§3.1 allows it or item-not-found; the
//   empty result is what clients handle best). Another user without one: <item-not-found/>
//   (§3.3: service-unavailable or item-not-found; an unknown account gets service-unavailable
//   from the router before this module is asked).
// - Setting another account's vCard: <forbidden/> (§3.2).
// - Larger than `max_size` bytes (serialised): <not-acceptable/> with a text naming the limit
//   (RFC 6120 §8.3.3.12: the request does not meet criteria defined by the server; XEP-0060
//   §7.1.3.4 answers an oversized payload the same way).
// - An empty <vCard/> set removes the stored vCard.
import { xml, type Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { z } from 'zod';
import { defineModule } from '../../src/module-api/define.js';
import { StanzaError } from '../../src/stream/errors.js';
import { parseElement } from '../../src/xml/parse.js';
import { detach } from '../../src/xml/clone.js';
import { text } from '../../src/storage/stores.js';
import { vcardMigrations } from './migrations.js';
import { VcardKey, type VcardService } from './service.js';

export const NS_VCARD = 'vcard-temp';

export const VcardConfig = z.strictObject({
  /** Largest vCard accepted, in bytes of its XML (a photo inside counts). */
  max_size: z.number().int().min(1024).default(65536),
});

export default defineModule({
  name: 'vcard',
  config: VcardConfig,
  // Its options are read from ctx.config at each use: a reload applies them live.
  reconfigure: () => true,
  migrations: vcardMigrations,
  setup(ctx) {
    // One vCard per account, as XML text.
    const store = ctx.store.keyval('vcard', text);
    ctx.feature(NS_VCARD);

    ctx.iq.get(
      NS_VCARD,
      'vCard',
      async (iq) => {
        const user = iq.to.bare;
        const stored = await store.get(user.domain, user.local);
        if (stored !== undefined) return iq.reply(parseElement(stored));
        if (iq.from.bare.equals(user)) return iq.reply(xml('vCard', { xmlns: NS_VCARD }));
        throw new StanzaError('item-not-found', 'this account has no vCard');
      },
      { to: 'bare' },
    );

    const listeners = new Set<(account: Jid, vcard: Element | undefined) => Promise<void> | void>();
    const service: VcardService = {
      async get(account) {
        const stored = await store.get(account.domain, account.local);
        return stored === undefined ? undefined : parseElement(stored);
      },
      async set(account, vcard) {
        const empty = vcard.children.every((c) => typeof c === 'string' && c.trim() === '');
        if (empty) {
          await store.delete(account.domain, account.local);
        } else {
          const xmlText = vcard.toString();
          const size = Buffer.byteLength(xmlText, 'utf8');
          if (size > ctx.config.max_size) {
            throw new StanzaError('not-acceptable', `the vCard is ${size} bytes; this server accepts at most ${ctx.config.max_size}`);
          }
          await store.set(account.domain, account.local, xmlText);
        }
        for (const listener of listeners) {
          try {
            await listener(account, empty ? undefined : vcard);
          } catch (err) {
            ctx.log.warn({ err, jid: account.toString() }, 'a vCard change listener failed');
          }
        }
      },
      onChange(listener) {
        listeners.add(listener);
        return () => void listeners.delete(listener);
      },
    };
    ctx.provide(VcardKey, service);

    ctx.iq.set(
      NS_VCARD,
      'vCard',
      async (iq) => {
        const user = iq.to.bare;
        if (!iq.from.bare.equals(user)) throw new StanzaError('forbidden', 'only the account itself can change its vCard');
        await service.set(user, detach(iq.payload));
        return iq.reply();
      },
      { to: 'bare' },
    );
  },
});
