// What the caps module provides to other modules (ctx.use(CapsKey)).
import type { Jid } from '../../src/jid.js';
import { serviceKey } from '../../src/module-api/keys.js';
import type { Session } from '../../src/sessions/session.js';

export interface CapsService {
  /** The 'node' of the server's own caps (XEP-0115 §4). */
  readonly node: string;
  /** The server's own verification string (XEP-0115 §5, sha-1), from its disco#info as it is now. */
  serverVer(): string;
  /**
   * The features a client session (or a remote contact's resource, see remoteResources)
   * announced with entity capabilities, by full JID, once the server has learnt them (a verified, cached hash, or the client's own answer); undefined
   * while unknown or when the client sent no caps.
   */
  featuresOf(fullJid: Jid | string): ReadonlySet<string> | undefined;
  /** Whether the client at `fullJid` announced `feature` (PEP asks for `<node>+notify`). */
  hasFeature(fullJid: Jid | string, feature: string): boolean;
  /** The available resources of a remote contact whose presence reached an account of this host. */
  remoteResources(bare: Jid): Jid[];
  /** Called each time a session's features become known or change. Returns the undo. */
  onFeatures(listener: (session: Session, features: ReadonlySet<string>) => void): () => void;
  /**
   * Called when a remote resource's features become known to a local account: its caps were
   * learnt or changed, or its available presence newly reached that account. Returns the undo.
   */
  onRemoteFeatures(listener: (remote: Jid, account: Jid, features: ReadonlySet<string>) => void): () => void;
}

export const CapsKey = serviceKey<CapsService>('caps');
