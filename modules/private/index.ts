// XEP-0049 Private XML Storage: a user stores any element under its own namespace on the
// server (an IQ with no 'to', or to the user's own bare JID) and gets it back by namespace
// and element name. Errors, as XEP-0049 names them:
// - another account's data: <forbidden/> (the preferable of forbidden and service-unavailable);
// - a get without a child element: <bad-request/> ("Bad Format"); a get for more than one: too;
// - a set without a child element, or a child without a namespace of its own: <not-acceptable/>;
// - a reserved namespace ('jabber:*', 'http://jabber.org/*', 'vcard-temp'): <not-acceptable/>.
// A get for something never stored returns the requested element, empty. What one account
// may store in all is bounded by `max_size`; past it, <not-acceptable/> with a text naming the
// limit (RFC 6120 §8.3.3.12: the request does not meet criteria defined by the server).
// Another module may keep one element elsewhere (service.ts: bookmarks conversion keeps
// storage:bookmarks in PEP).
import { xml, type Element } from '@xmpp/xml';
import { z } from 'zod';
import { defineModule } from '../../src/module-api/define.js';
import { StanzaError } from '../../src/stream/errors.js';
import { parseElement } from '../../src/xml/parse.js';
import { detach } from './fragment.js';
import { text } from '../../src/storage/stores.js';
import { privateMigrations, privateKey } from './migrations.js';
import { PrivateKey, type PrivateRedirect } from './service.js';

export const NS_PRIVATE = 'jabber:iq:private';
/** Longest namespace and element name stored. */
const MAX_KEY_LENGTH = 1023;

export const PrivateConfig = z.strictObject({
  /** Most private XML one account may store, in bytes, all namespaces together. */
  max_size: z.number().int().min(1024).default(1048576),
});

/** XEP-0049 §2.3: namespaces reserved in Jabber. */
export function isReserved(ns: string): boolean {
  return ns.startsWith('jabber:') || ns.startsWith('http://jabber.org/') || ns === 'vcard-temp';
}

/** The (namespace, local name) a child element is stored under; throws when it may not be. */
function keyOf(child: Element): { namespace: string; name: string; key: string } {
  const namespace = child.getNS() ?? '';
  const name = child.getName();
  if (namespace === '' || namespace === NS_PRIVATE) {
    throw new StanzaError('not-acceptable', 'the stored element needs a namespace of its own');
  }
  if (isReserved(namespace)) throw new StanzaError('not-acceptable', `${namespace} is a reserved namespace`);
  if (namespace.length > MAX_KEY_LENGTH || name.length > MAX_KEY_LENGTH) {
    throw new StanzaError('not-acceptable', `namespaces and element names are limited to ${MAX_KEY_LENGTH} characters`);
  }
  return { namespace, name, key: privateKey(namespace, name) };
}

export default defineModule({
  name: 'private',
  config: PrivateConfig,
  // Its options are read from ctx.config at each use: a reload applies them live.
  reconfigure: () => true,
  migrations: privateMigrations,
  setup(ctx) {
    // One entry per stored element, keyed by its namespace and name, as XML text.
    const store = ctx.store.map('private', text);
    ctx.feature(NS_PRIVATE);

    const redirects = new Map<string, PrivateRedirect>();
    ctx.provide(PrivateKey, {
      redirect(namespace, name, redirect) {
        const key = privateKey(namespace, name);
        redirects.set(key, redirect);
        return () => void redirects.delete(key);
      },
    });

    ctx.iq.get(
      NS_PRIVATE,
      'query',
      async (iq) => {
        const user = iq.to.bare;
        const children = iq.payload.getChildElements();
        if (children.length !== 1) throw new StanzaError('bad-request', 'a get names exactly one element and namespace');
        const { namespace, name, key } = keyOf(children[0]!);
        const stored = await store.get(user.domain, user.local, key);
        const element = stored === undefined ? undefined : parseElement(stored);
        const redirect = redirects.get(key);
        if (redirect) return iq.reply(xml('query', { xmlns: NS_PRIVATE }, await redirect.get(user, element)));
        return iq.reply(xml('query', { xmlns: NS_PRIVATE }, element ?? xml(name, { xmlns: namespace })));
      },
      { to: 'self' },
    );

    ctx.iq.set(
      NS_PRIVATE,
      'query',
      async (iq) => {
        const user = iq.to.bare;
        const children = iq.payload.getChildElements();
        if (children.length === 0) throw new StanzaError('not-acceptable', 'a set carries at least one element to store');
        const entries: [string, string][] = [];
        for (const child of children) {
          const { key } = keyOf(child);
          const redirect = redirects.get(key);
          if (redirect) await redirect.set(user, child);
          else entries.push([key, detach(child).toString()]);
        }
        if (entries.length === 0) return iq.reply();
        // Stored only if the account's total stays within max_size (else nothing changes).
        await store.update(user.domain, user.local, (stored) => {
          for (const [key, value] of entries) stored.set(key, value);
          let total = 0;
          for (const value of stored.values()) total += Buffer.byteLength(value, 'utf8');
          if (total > ctx.config.max_size) throw new StanzaError('not-acceptable', `an account may store at most ${ctx.config.max_size} bytes of private XML`);
        });
        return iq.reply();
      },
      { to: 'self' },
    );
  },
});
