// Who may see a node's items and subscribe (XEP-0060 §4.5 access models), on an account's PEP
// service: the owner always; an outcast never; then by the node's access model, from the
// requester's item on the owner's roster and its affiliation with the node.
import type { StanzaError } from '../../src/stream/errors.js';
import type { RosterItem } from '../roster/service.js';
import type { NodeConfig } from './node-config.js';
import { pubsubError } from './ns.js';
import type { Affiliation } from './store.js';

export interface Relation {
  /** The requester is the account itself. */
  owner: boolean;
  /** The requester's item on the owner's roster, if any. */
  rosterItem?: RosterItem;
  affiliation?: Affiliation;
}

const sharesPresence = (item: RosterItem | undefined) => item?.subscription === 'from' || item?.subscription === 'both';

/** Undefined when access is granted, else the error XEP-0060 §6.1.3 / §6.5.9 gives. */
export function accessError(config: NodeConfig, who: Relation): StanzaError | undefined {
  if (who.owner || who.affiliation === 'owner') return undefined;
  if (who.affiliation === 'outcast') return pubsubError('forbidden', undefined, 'you are banned from this node');
  const member = who.affiliation === 'member' || who.affiliation === 'publisher';
  switch (config.access_model) {
    case 'open':
      return undefined;
    case 'presence':
      if (member || sharesPresence(who.rosterItem)) return undefined;
      return pubsubError('not-authorized', 'presence-subscription-required', 'this node is for contacts with a presence subscription');
    case 'roster':
      if (member || who.rosterItem?.groups.some((g) => config.roster_groups_allowed.includes(g))) return undefined;
      return pubsubError('not-authorized', 'not-in-roster-group', 'this node is for some roster groups only');
    case 'whitelist':
      if (member) return undefined;
      return pubsubError('not-allowed', 'closed-node', 'this node is for its whitelist only');
  }
}
