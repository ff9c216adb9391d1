// What the sasl module provides to other modules: the registry of session features a client
// may enable inline at Bind 2 (XEP-0386), such as carbons and CSI.
import type { Element } from '@xmpp/xml';
import { serviceKey } from '../../src/module-api/keys.js';
import type { ClientStream } from '../../src/sessions/session.js';

/** A session feature a client may enable inline (<feature var=.../> in the Bind 2 <inline/>). */
export interface Bind2Feature {
  /** The feature's namespace: advertised as <feature var/>, and the namespace of the request child. */
  readonly var: string;
  /** Enables the feature for the freshly bound stream; what it returns goes into <bound/>. */
  enable(stream: ClientStream, request: Element): Promise<Element | undefined> | Element | undefined;
}

export interface Bind2Registry {
  /** Adds a feature; returns the function that removes it (hand it to ctx.onUnload). */
  add(feature: Bind2Feature): () => void;
}

export const Bind2Key = serviceKey<Bind2Registry>('bind2.features');
