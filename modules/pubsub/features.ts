// The pubsub features (XEP-0060 §10) each service implements, for disco#info: what the engine
// does on any service, and what only PEP's presence and roster rules add (XEP-0163).
import { NS_PUBSUB } from './ns.js';

const COMMON = [
  'access-open',
  'access-whitelist',
  'auto-create',
  'config-node',
  // pubsub#max_items accepts "max" (the server's limit); Gajim, Converse.js and Monal look for it
  // before they use Bookmarks 2 (whose max_items is "max").
  'config-node-max',
  'create-and-configure',
  'create-nodes',
  'delete-items',
  'delete-nodes',
  'instant-nodes',
  'item-ids',
  'manage-subscriptions',
  'last-published',
  'modify-affiliations',
  'persistent-items',
  'publish',
  'publish-options',
  'purge-nodes',
  'retract-items',
  'retrieve-affiliations',
  'retrieve-default',
  'retrieve-items',
  'retrieve-subscriptions',
  'rsm',
  'subscribe',
];

const PEP_ONLY = ['access-presence', 'access-roster', 'auto-subscribe', 'filtered-notifications', 'presence-notifications'];

const withNs = (names: string[]) => [NS_PUBSUB, ...names.sort().map((f) => `${NS_PUBSUB}#${f}`)];

/** The features of every account's PEP service. */
export const PEP_FEATURES = withNs([...COMMON, ...PEP_ONLY]);
/** The features of the general service (pubsub.<host>). */
export const SERVICE_FEATURES = withNs(COMMON);
