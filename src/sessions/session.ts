// What modules and the router see of a client session, whatever carries it (c2s TCP today;
// WebSocket and BOSH later). The connection role implements it.
//
// Two ways to write, by construction: a stanza goes through deliver() (the outbound pipeline:
// the 'stanza/out' hooks, where stream management counts and queues, CSI holds and push wakes),
// and a nonza (negotiation, acks, stream-level elements) through sendNonza(), which refuses
// stanzas. Nothing a module holds writes a stanza around the pipeline.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../jid.js';
import type { Logger } from '../log.js';
import type { SessionData } from '../module-api/keys.js';
import type { StreamError } from '../stream/errors.js';

export interface Session {
  /** Stream id, unique per connection. */
  readonly id: string;
  /** The served domain this stream is for. */
  readonly host: string;
  readonly remoteAddress: string;
  /** When the connection began (ms since the epoch). */
  readonly connectedAt: number;
  readonly log: Logger;
  /** True once TLS is on (STARTTLS done or direct TLS). */
  readonly secure: boolean;
  /** The account's bare JID once authenticated. */
  readonly user: Jid | undefined;
  /** The full JID once a resource is bound. */
  readonly jid: Jid | undefined;
  /** Last broadcast presence (available), undefined when unavailable. */
  presence: Element | undefined;
  /** Presence priority from the last broadcast presence (RFC 6121 §4.7.2.3). */
  priority: number;
  /** Per-module state, by typed key (sessionKey()). */
  readonly data: SessionData;
  /**
   * Hands a stanza to this session: through the outbound pipeline, then onto the wire.
   * `from` is the stanza's sender, parsed, when the caller has it.
   */
  deliver(stanza: Element, from?: Jid): void;
  /**
   * deliver() for a stanza already serialised by the caller (fan-out: a MUC room serialises a
   * message once for all its occupants, only 'to' differing). The pipeline runs with the
   * element as for deliver() (stream management counts and queues it, and serialises it again
   * only to resend it); if none takes it, `serialized` goes onto the wire as it is. It MUST be
   * a serialisation of `stanza`.
   */
  deliverSerialized(stanza: Element, serialized: string, from?: Jid): void;
  /** Writes a nonza (negotiation, acks, stream-level elements) as it is; throws for a stanza. */
  sendNonza(element: Element): void;
  /** Closes the stream, with a stream error when given. */
  close(error?: StreamError): void;
  readonly closed: boolean;
  /** When the client last sent anything (epoch milliseconds). */
  readonly lastReceivedAt: number;
  /** True while the connection is gone but stream management keeps the session. */
  readonly hibernating: boolean;
  /** Ends a session for good (a kept session whose resumption time ran out). */
  end(error?: StreamError): void;
  /** Settles when the teardown of an ended session (presence, 'session/closed' hooks) is done. */
  readonly finished: Promise<void>;
  /** Stanzas received from the client and handled (delivered or stored), in order (XEP-0198 h). */
  readonly handledCount: number;
  /** Resolves with handledCount once every stanza received so far is handled. */
  whenHandled(): Promise<number>;
}

export function isAvailable(session: Session): boolean {
  return session.presence !== undefined;
}

const STANZA_NAMES = new Set(['message', 'presence', 'iq']);

export function isStanza(element: Element): boolean {
  return STANZA_NAMES.has(element.name);
}

/** A client stream during negotiation, as the SASL, binding and stream management code sees it. */
export interface ClientStream extends Session {
  /** The TLS socket once TLS is on, for channel binding. */
  readonly tlsSocket: import('node:tls').TLSSocket | undefined;
  /**
   * Marks the stream authenticated as `user` (a bare JID of this host). With `restart`
   * (RFC 6120 SASL) the client opens a new stream next; SASL2 goes on without one.
   */
  authenticated(user: Jid, via: string, options: { restart: boolean }): void;
  /** Binds a resource (server-generated when none or taken by policy); throws StanzaError. */
  bind(resource?: string): Promise<Jid>;
  /** Sends the stream features for the current stage (after SASL2, without a restart). */
  sendFeatures(): void;
  /**
   * Writes again a stanza that already went through the pipeline once and was not acknowledged
   * (XEP-0198 resumption): stream management's own, never counted twice.
   */
  retransmit(stanza: Element): void;
  /** Moves this (kept) session onto the connection of `fresh`, which resumed it. */
  resumeOn(fresh: ClientStream): void;
}
