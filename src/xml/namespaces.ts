// XML namespaces used across the core. Modules keep their own beside them.
export const NS = {
  CLIENT: 'jabber:client',
  SERVER: 'jabber:server',
  /** Server Dialback (XEP-0220), and its stream feature for dialback errors. */
  DIALBACK: 'jabber:server:dialback',
  DIALBACK_FEATURES: 'urn:xmpp:features:dialback',
  STREAM: 'http://etherx.jabber.org/streams',
  /** XMPP over WebSocket (RFC 7395): <open/> and <close/>. */
  FRAMING: 'urn:ietf:params:xml:ns:xmpp-framing',
  STREAMS_ERROR: 'urn:ietf:params:xml:ns:xmpp-streams',
  STANZAS_ERROR: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  TLS: 'urn:ietf:params:xml:ns:xmpp-tls',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  SASL2: 'urn:xmpp:sasl:2',
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind',
  BIND2: 'urn:xmpp:bind:0',
  FAST: 'urn:xmpp:fast:0',
  SESSION: 'urn:ietf:params:xml:ns:xmpp-session',
  SASL_CB: 'urn:xmpp:sasl-cb:0',
  STREAM_LIMITS: 'urn:xmpp:stream-limits:0',
  PING: 'urn:xmpp:ping',
  DISCO_INFO: 'http://jabber.org/protocol/disco#info',
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items',
  DELAY: 'urn:xmpp:delay',
} as const;
