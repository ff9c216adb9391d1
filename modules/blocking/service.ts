// What the blocking module provides to other modules (ctx.tryUse(BlockingKey)).
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';

export interface BlockingService {
  /** Whether `user` (a local account's bare JID) blocks `other` (XEP-0191 JID matching). */
  isBlocked(user: Jid, other: Jid): Promise<boolean>;
  /** The user's blocked JIDs, as stored (prepared), sorted. */
  list(user: Jid): Promise<string[]>;
  /**
   * The same answer as isBlocked, from memory, for synchronous hooks ('stanza/out'): known when
   * the user has a session on this node, undefined otherwise.
   */
  isBlockedNow(user: Jid, other: Jid): boolean | undefined;
  /**
   * Listens to block requests (XEP-0191 §3.3) for what their <item/> elements carry beyond the
   * JID (XEP-0377 reports). Returns the undo.
   */
  onBlock(listener: BlockListener): () => void;
}

/** One <item/> of a block request: its JID, parsed, and the element with what else it holds. */
export interface BlockItem {
  jid: Jid;
  element: Element;
}

export interface BlockListener {
  /** Before anything is stored: throws a StanzaError to refuse the whole request. */
  check?(user: Jid, items: readonly BlockItem[]): void;
  /** Once the block is stored, before the request is answered: a failure is the request's error. */
  blocked?(user: Jid, items: readonly BlockItem[]): Promise<void>;
}

export const BlockingKey = serviceKey<BlockingService>('blocking');
