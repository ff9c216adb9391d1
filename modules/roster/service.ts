// What the roster module provides to other modules (ctx.use(RosterKey)).
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';

export type Subscription = 'none' | 'to' | 'from' | 'both';

export interface RosterItem {
  /** The contact's bare JID. */
  jid: string;
  name?: string;
  subscription: Subscription;
  /** A subscription request of ours is pending (pending-out). */
  ask: boolean;
  /** We pre-approved the contact's subscription (RFC 6121 §3.4). */
  approved: boolean;
  groups: string[];
}

export interface RosterService {
  /** All items of a user's roster. */
  items(user: Jid): Promise<RosterItem[]>;
  /** One item, or undefined when the contact is not on the roster. */
  item(user: Jid, contact: Jid): Promise<RosterItem | undefined>;
  /** Whether `contact` receives `user`'s presence (subscription from or both). */
  sharesPresenceWith(user: Jid, contact: Jid): Promise<boolean>;
}

export const RosterKey = serviceKey<RosterService>('roster');
