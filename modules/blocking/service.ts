// What the blocking module provides to other modules (ctx.tryUse(BlockingKey)).
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
}

export const BlockingKey = serviceKey<BlockingService>('blocking');
