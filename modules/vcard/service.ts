// What the vcard module offers other modules (ctx.use(VcardKey)): an account's vCard, read and
// written as the account itself, and word of each change (avatar conversion, XEP-0398).
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';

export interface VcardService {
  get(account: Jid): Promise<Element | undefined>;
  /** Stores `vcard` (an empty one removes it), within the size limit; listeners are called. */
  set(account: Jid, vcard: Element): Promise<void>;
  /** Called after each change of an account's vCard (undefined: removed). Returns the undo. */
  onChange(listener: (account: Jid, vcard: Element | undefined) => Promise<void> | void): () => void;
}

export const VcardKey = serviceKey<VcardService>('vcard');
