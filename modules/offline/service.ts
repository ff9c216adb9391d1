// What the offline module provides to other modules (ctx.tryUse(OfflineKey)): stream management
// (XEP-0198) stores here what a kept session holds, so that it survives a restart, and takes it
// back when the session resumes.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';
import type { OfflineDecision } from './policy.js';

/** Stored (with the item's id), or why not: the policy's decision, or a full queue. */
export type KeepResult = { stored: string } | { notStored: Exclude<OfflineDecision, 'store'> | 'full' };

export interface OfflineService {
  /**
   * Stores a message for the account of `to` as for an offline recipient (XEP-0160 policy and
   * limit), `receivedAt` being when this server received it (the time of its XEP-0203 delay);
   * resolves once committed. Nothing is handed to a session: see handOver.
   */
  keep(stanza: Element, from: Jid, to: Jid, receivedAt: number): Promise<KeepResult>;
  /** Deletes stored messages of `user` by id; resolves with the ids that were still stored. */
  takeBack(user: Jid, ids: readonly string[]): Promise<Set<string>>;
  /** Hands the stored messages of `user` to the session that takes offline messages now, if any. */
  handOver(user: Jid): Promise<void>;
}

export const OfflineKey = serviceKey<OfflineService>('offline');
