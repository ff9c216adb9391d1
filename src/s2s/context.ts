// What incoming and outgoing server streams share: options, TLS, dialback keys, and the
// manager's services (routing, target lookup, dialback verification).
import type { Element } from '@xmpp/xml';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { StanzaErrorCondition } from '../stream/errors.js';
import type { DialbackKeys } from './dialback.js';
import type { ConnectTarget } from './route-target.js';
import type { S2sTls } from './tls.js';

export type S2sOptions = Config['s2s'];

/** The answer of an authoritative server about a dialback key, or why there is none. */
export type Verdict = { type: 'valid' } | { type: 'invalid' } | { type: 'error'; condition: StanzaErrorCondition; text: string };

export interface S2sContext {
  readonly options: S2sOptions;
  readonly tls: S2sTls;
  readonly keys: DialbackKeys;
  readonly log: Logger;
  /** A domain served here (a host or a service domain). */
  isLocal(domain: string): boolean;
  /** Where to connect for a remote domain, in order. */
  resolve(domain: string): Promise<ConnectTarget[]>;
  /** Asks the authoritative server of `remote` whether `key` is its key for our stream `streamId`. */
  verify(local: string, remote: string, streamId: string, key: string): Promise<Verdict>;
  /** Hands an authenticated incoming stanza to the router (addresses checked and prepared). */
  deliver(stanza: Element): Promise<void>;
  /** A remote domain authenticated with a local one on a stream ('s2s/linked'). */
  linked(local: string, remote: string, direction: 'in' | 'out'): void;
  /** Sends the error reply of a stanza we could not deliver back to its (local) sender. */
  bounce(stanza: Element, condition: StanzaErrorCondition, text: string): void;
}

export const limitsOf = (o: S2sOptions) => ({ maxStanzaBytes: o.max_stanza_size, maxDepth: o.max_depth, maxAttributes: o.max_attributes });
