// What the disco module provides to other modules (ctx.use(DiscoKey)).
import type { Element } from '@xmpp/xml';
import { serviceKey } from '../../src/module-api/keys.js';
import type { Jid } from '../../src/jid.js';
import type { DiscoIdentity, DiscoItem } from '../../src/module-api/host.js';

/** An identity as disco#info carries it: with its xml:lang, if any. */
export interface DiscoInfoIdentity extends DiscoIdentity {
  lang?: string;
}

/** A disco#info answer, as data. */
export interface DiscoInfo {
  identities: DiscoInfoIdentity[];
  features: string[];
  /** XEP-0128 extended information: jabber:x:data forms of type result. */
  forms: Element[];
}

/**
 * Items of an account's bare JID for one request. Undefined: this provider knows nothing of
 * that node (or has no items without one); an array, even empty: these are its items.
 */
export type AccountItemsProvider = (user: Jid, requester: Jid, node: string | undefined) => DiscoItem[] | undefined | Promise<DiscoItem[] | undefined>;

/**
 * Nodes of the host's own disco#info and disco#items (XEP-0050 command nodes, say). Each
 * answers for the nodes it knows, for one requester: undefined when the node is not its own.
 * A provider may throw StanzaError (forbidden) for a requester not allowed to see a node.
 */
export interface HostNodeProvider {
  info(node: string, requester: Jid): DiscoInfo | undefined | Promise<DiscoInfo | undefined>;
  items(node: string, requester: Jid): DiscoItem[] | undefined | Promise<DiscoItem[] | undefined>;
}

export interface DiscoService {
  /** The host's own disco#info, exactly as it is answered without a node. */
  hostInfo(): DiscoInfo;
  /**
   * Answers disco#info of the host at the nodes `match` accepts with the host's own info
   * (XEP-0115: the caps node#ver). Returns the undo.
   */
  addHostInfoNode(match: (node: string) => boolean): () => void;
  /**
   * Adds items to disco#items of accounts (PEP nodes, say), for requesters allowed to see them.
   * A provider that knows the node answers for it; a node nobody knows is item-not-found.
   * Returns the undo.
   */
  addAccountItems(provider: AccountItemsProvider): () => void;
  /** Adds nodes to the host's disco#info and disco#items. Returns the undo. */
  addHostNodes(provider: HostNodeProvider): () => void;
}

export const DiscoKey = serviceKey<DiscoService>('disco');
