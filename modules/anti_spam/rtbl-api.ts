// What the anti_spam module offers other modules (ctx.tryUse(RtblKey)): whether an address is
// on one of the real-time blocklists the host subscribes to (rtbl.ts). The muc module asks it
// on a join ([modules.muc] rtbl_ban).
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';

export interface RtblApi {
  /** Whether the bare JID of `jid`, or its domain, is listed (by its SHA-256) on a blocklist. */
  listed(jid: Jid): boolean;
  /** Entries on all the lists together. */
  readonly size: number;
  /** Fetches of a whole list that succeeded so far (all lists together). */
  readonly fetches: number;
  /** Calls `listener` after each fetch of a list and each change (an event); returns the undo. */
  onUpdate(listener: () => void): () => void;
}

export const RtblKey = serviceKey<RtblApi>('anti_spam.rtbl');
