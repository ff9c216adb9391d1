// The namespaces Multi-User Chat (XEP-0045) and its companions use.
export const MUC = {
  /** The join element in presence; the service's and rooms' main feature. */
  BASE: 'http://jabber.org/protocol/muc',
  USER: 'http://jabber.org/protocol/muc#user',
  ADMIN: 'http://jabber.org/protocol/muc#admin',
  OWNER: 'http://jabber.org/protocol/muc#owner',
  UNIQUE: 'http://jabber.org/protocol/muc#unique',
  ROOMCONFIG: 'http://jabber.org/protocol/muc#roomconfig',
  ROOMINFO: 'http://jabber.org/protocol/muc#roominfo',
  REQUEST: 'http://jabber.org/protocol/muc#request',
  /** XEP-0045 §6.4 (1.31): the room keeps the message ids of its occupants. */
  STABLE_ID: 'http://jabber.org/protocol/muc#stable_id',
  /** XEP-0410: the room answers an occupant's ping to its own occupant JID. */
  SELF_PING: 'http://jabber.org/protocol/muc#self-ping-optimization',
  /** XEP-0421 occupant identifiers. */
  OCCUPANT_ID: 'urn:xmpp:occupant-id:0',
  /** XEP-0359 stanza ids the room puts on its messages. */
  SID: 'urn:xmpp:sid:0',
  /** XEP-0425 (0.3) moderated retraction and XEP-0424 retraction. */
  MODERATE: 'urn:xmpp:message-moderate:1',
  RETRACT: 'urn:xmpp:message-retract:1',
  FALLBACK: 'urn:xmpp:fallback:0',
  /** XEP-0313 message archive management (a room archive answers it: modules/muc-mam). */
  MAM: 'urn:xmpp:mam:2',
  /** XEP-0249 direct invitations (client to client). */
  CONFERENCE: 'jabber:x:conference',
  DATA: 'jabber:x:data',
  DELAY: 'urn:xmpp:delay',
  PING: 'urn:xmpp:ping',
  DISCO_INFO: 'http://jabber.org/protocol/disco#info',
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items',
} as const;

/** XEP-0045 §15.6 status codes used here. */
export const STATUS = {
  NON_ANONYMOUS: 100,
  CONFIG_CHANGED: 104,
  SELF: 110,
  LOGGING_ON: 170,
  LOGGING_OFF: 171,
  NOW_NON_ANONYMOUS: 172,
  NOW_SEMI_ANONYMOUS: 173,
  CREATED: 201,
  NICK_ASSIGNED: 210,
  BANNED: 301,
  NICK_CHANGED: 303,
  KICKED: 307,
  REMOVED_AFFILIATION: 321,
  REMOVED_MEMBERS_ONLY: 322,
  SHUTDOWN: 332,
  /** Removed because of a delivery error (technical reasons, XEP-0045 1.32). */
  REMOVED_ERROR: 333,
} as const;
