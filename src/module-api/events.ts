// The hooks of the server, with the shape of each event.
import type { Element } from '@xmpp/xml';
import type { Jid } from '../jid.js';
import type { Session } from '../sessions/session.js';
import type { StreamError } from '../stream/errors.js';

/** A stanza on its way to a local address (a user's bare or full JID, or the host itself). */
export interface RouteEvent {
  stanza: Element;
  from: Jid;
  to: Jid;
  /** The local session it came from, if it came from one. */
  origin?: Session;
}

export interface HookEvents {
  /** Every stanza from a bound client session, `from` stamped, before routing. Stop = drop. */
  'stanza/in': { session: Session; stanza: Element };
  /**
   * Every stanza about to be written to a client session, run synchronously (fireSync) so order
   * is kept. Stop = the hook took it (held by CSI, queued while the connection is gone).
   */
  'stanza/out': { session: Session; stanza: Element };
  /** Stanzas to a local account's bare JID; stop = handled. The default comes after the chain. */
  'message/bare': RouteEvent;
  /** An IQ to a local account's bare JID (or to none, from its own client), before the IQ handlers. */
  'iq/bare': RouteEvent;
  'message/full': RouteEvent;
  'message/host': RouteEvent;
  'presence/bare': RouteEvent;
  'presence/full': RouteEvent;
  'presence/host': RouteEvent;
  /** A message for an account with no session to take it (offline storage hooks in here). */
  'message/offline': RouteEvent;
  /**
   * After the router's default handling accepted a message to a local account (bare or full
   * JID): `sessions` are the local sessions it was delivered to, empty when the
   * 'message/offline' chain took it. Not fired when a 'message/*' hook stopped the chain or the
   * message bounced. Message carbons (XEP-0280) copy it to the other resources from here.
   */
  'message/delivered': RouteEvent & { sessions: readonly Session[] };
  /** A stanza for another domain (federation hooks in here). Stop = taken. */
  'route/remote': RouteEvent;
  /**
   * A client's broadcast presence changed (available, unavailable, priority). `initial` is
   * true for the session's first available presence (RFC 6121 §4.2: probes, offline messages).
   */
  'presence/broadcast': { session: Session; stanza: Element; initial: boolean };
  'session/authenticated': { session: Session };
  'session/bound': { session: Session };
  /**
   * A bound session's connection dropped without a closing handshake. Stop (return true) to
   * keep the session for a resumption (XEP-0198); the keeper later calls end() or resumeOn().
   */
  'session/interrupted': { session: Session };
  'session/closed': { session: Session; error?: StreamError };
  'account/deleted': { jid: Jid };
  /** The server is stopping: the last moment to save state while storage and modules are up. */
  'server/stopping': Record<string, never>;
}
