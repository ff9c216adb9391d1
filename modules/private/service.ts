// What the private module offers other modules (ctx.use(PrivateKey)): one stored element
// (namespace and name) can be kept elsewhere, as bookmarks conversion keeps storage:bookmarks
// in PEP (XEP-0402 §5.3); the client sees private XML storage as ever.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';

export interface PrivateRedirect {
  /** The element for a get; `stored` is what private storage holds under its name (data from before the redirect). */
  get(account: Jid, stored: Element | undefined): Promise<Element>;
  /** Keeps the element of a set (private storage does not). */
  set(account: Jid, element: Element): Promise<void>;
}

export interface PrivateService {
  /** Sends gets and sets of <name xmlns=namespace/> to `redirect`. Returns the undo. */
  redirect(namespace: string, name: string, redirect: PrivateRedirect): () => void;
}

export const PrivateKey = serviceKey<PrivateService>('private');
