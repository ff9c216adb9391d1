// The hooks of the server, with the shape of each event.
//
// The routing grid (as Prosody's stanza router has it): for a stanza from a local client,
// `pre-<kind>/<target>` fires on the client's host first (blocking, privacy, rate limits, the
// copies of what a client sends), whatever domain it is for; then, for every stanza to a local
// address, `<kind>/<target>` fires on the addressed host. The target is the shape of the 'to'
// address: a domain (host), an account's bare JID (bare) or a full JID (full). Handlers return
// true to stop the chain (the stanza is taken, or dropped).
import type { Element } from '@xmpp/xml';
import type { Jid } from '../jid.js';
import type { Session } from '../sessions/session.js';
import type { StreamError } from '../stream/errors.js';

export type StanzaKind = 'message' | 'presence' | 'iq';
export type RouteTarget = 'host' | 'bare' | 'full';

/** A stanza on its way, with its addresses parsed once by the router. */
export interface RouteEvent {
  stanza: Element;
  from: Jid;
  /** The addressed entity; a client's stanza without 'to' is addressed to its own account. */
  to: Jid;
  /** The local client session it came from, if it came from one. */
  origin?: Session;
}

/** What the session listing shows of the state modules keep on a session. */
export interface SessionDescription {
  /** Stream management (XEP-0198): off, on, or resumable. */
  sm?: 'off' | 'on' | 'resumable';
  /** Client state indication (XEP-0352). */
  csi?: 'active' | 'inactive';
}

/** A stanza from a local client session, before it is routed. */
export interface PreRouteEvent extends RouteEvent {
  origin: Session;
}

type RoutingEvents = { [E in `${StanzaKind}/${RouteTarget}`]: RouteEvent } & {
  [E in `pre-${StanzaKind}/${RouteTarget}`]: PreRouteEvent;
};

export interface HookEvents extends RoutingEvents {
  /**
   * Every stanza about to be written to a client session (the outbound pipeline), run
   * synchronously (fireSync) so order is kept. Stop = the hook took it (held by CSI, queued
   * while the connection is gone). `from` is the parsed sender when the router knew it.
   */
  'stanza/out': { session: Session; stanza: Element; from?: Jid };
  /**
   * A stanza from another server (its sender's domain is not served here), before it is
   * routed: fired on the host it is addressed to (for a service domain, the host it is a
   * subdomain of, else the first host), for every kind and target, services included. Stop =
   * dropped; a StanzaError thrown goes back to the sender (rate limits, blocklists).
   */
  'stanza/in': RouteEvent;
  /**
   * A remote domain authenticated on a server stream with one of ours: a link to it is up
   * (again, after one was lost). Fired on the host of the local domain (for a service domain,
   * its host) without waiting; 'in' when the remote server connected to us.
   */
  's2s/linked': { local: string; remote: string; direction: 'in' | 'out' };
  /** A message for an account with no session to take it (offline storage hooks in here). */
  'message/offline': RouteEvent;
  /**
   * After the router's default handling accepted a message to a local account (bare or full
   * JID): `sessions` are the local sessions it was delivered to, empty when the
   * 'message/offline' chain took it. Not fired when a 'message/*' hook stopped the chain or the
   * message bounced. Message carbons (XEP-0280) copy it to the other resources from here, and
   * add each session that got a copy to `copiedTo` (stream management then knows which
   * resources have the message: those copies are not stored again from a kept session).
   * `forwarded`: another node of the cluster routed it (and made the copies) to a session of
   * this node that had ended meanwhile; it went to the account's other resources here instead.
   */
  'message/delivered': RouteEvent & { sessions: readonly Session[]; copiedTo: Session[]; forwarded?: boolean };
  /** A stanza for another domain (federation hooks in here). Stop = taken. */
  'route/remote': RouteEvent;
  /**
   * A client's broadcast presence (no 'to', available or unavailable) changed its availability
   * (RFC 6121 §4.2, §4.5), after 'pre-presence/bare' let it through. `initial` is true for the
   * session's first available presence (probes, offline messages).
   */
  'presence/broadcast': { session: Session; stanza: Element; initial: boolean };
  'session/authenticated': { session: Session };
  'session/bound': { session: Session };
  /** What modules know of a session, for `starling sessions` (run synchronously). */
  'session/describe': { session: Session; info: SessionDescription };
  /** A bound session received nothing for the configured idle interval (the ping module asks). */
  'session/idle': { session: Session };
  /**
   * A bound session's connection dropped without a closing handshake. Stop (return true) to
   * keep the session for a resumption (XEP-0198); the keeper later calls end() or resumeOn().
   */
  'session/interrupted': { session: Session };
  /**
   * A session ended. In a cluster, also for each session of a node that died (a RemoteSession,
   * closed): every live node fires it then, for its own state (MUC rooms drop its occupants),
   * with `reaped.here` on the one node that cleaned up after it, which alone does what is
   * service-wide (storage writes, stanzas).
   */
  'session/closed': { session: Session; error?: StreamError; reaped?: { node: string; here: boolean } };
  'account/deleted': { jid: Jid };
  /** The server is stopping: the last moment to save state while storage and modules are up. */
  'server/stopping': Record<string, never>;
}

const TARGETS = ['host', 'bare', 'full'] as const;

/** The three 'pre-<kind>/<target>' events: a module that sees every client stanza of a kind hooks all of them. */
export function preEvents<K extends StanzaKind>(kind: K): `pre-${K}/${RouteTarget}`[] {
  return TARGETS.map((target) => `pre-${kind}/${target}` as const);
}
